// Checkpoint folders: `latest` always names a complete one; older ones are pruned only after
// the switch; saving again under the latest name never rewrites that folder.

import XCTest
@testable import Pipeline

final class TrainingCheckpointTests: XCTestCase {
    struct S: Codable, Equatable { var step: Int }

    func testLatestPruningAndNoRewriteOfTheLatestFolder() throws {
        let dir = NSTemporaryDirectory() + "troupe-ck-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ck = TrainingCheckpoint(directory: dir)
        XCTAssertNil(ck.latest)
        let p = Tensor([1, 2, 3], shape: [3])
        let opt = AdamW(parameters: [p])
        for step in 1...4 {
            p.assign(Tensor([Float(step), 0, 0], shape: [3]))
            try ck.save(name: "step-\(step)", tensors: ["p": p], optimizer: opt, optimizerNames: ["p"], state: S(step: step))
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertEqual(ck.latest.map { ($0 as NSString).lastPathComponent }, "step-4")
        let kept = try FileManager.default.contentsOfDirectory(atPath: ck.root).filter { $0.hasPrefix("step-") }.sorted()
        XCTAssertEqual(kept, ["step-3", "step-4"])
        let (state, weights, optimizer) = try ck.load(S.self)
        XCTAssertEqual(state, S(step: 4))
        XCTAssertEqual(try weights.tensor("p").toArray(), [4, 0, 0])
        XCTAssertNotNil(optimizer)
        // Same name again: written beside, then `latest` moves; the old folder stays whole.
        try ck.save(name: "step-4", tensors: ["p": p], optimizer: nil, optimizerNames: [], state: S(step: 5))
        XCTAssertEqual(ck.latest.map { ($0 as NSString).lastPathComponent }, "step-4-again")
        XCTAssertEqual(try ck.load(S.self).state, S(step: 5))
        XCTAssertNoThrow(try SafetensorsFile(path: ck.root + "/step-4/weights.safetensors"))
    }
}
