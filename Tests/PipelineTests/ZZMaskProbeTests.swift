import XCTest
import Foundation
@testable import Pipeline

final class ZZMaskProbeTests: XCTestCase {
    final class Recorder: Guidance, @unchecked Sendable {
        var masks: [[Float]] = []
        func branches(atStep index: Int, of total: Int) -> [GuidanceBranch] { [.unconditional, .plain, .subjectless] }
        func combine(_ o: [GuidanceBranch: Tensor], atStep index: Int, of total: Int) -> Tensor {
            let u = o[.unconditional]!, c = o[.plain]!
            let m = SubjectMask.diffEdit(prompt: c, subjectless: o[.subjectless]!)
            masks.append(m.toArray())
            return u + (c - u) * 6
        }
    }
    func testProbe() throws {
        guard ProcessInfo.processInfo.environment["MASK_PROBE"] != nil else { return }
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: "/work/main/models/troupe-mini"))
        var out: [[String: Any]] = []
        for (prompt, rest) in [("a knight with red hair, waving in a forest, smiling, front view", ", waving in a forest, smiling, front view"),
                               ("a robot in a teal outfit, walking under a blue sky, smiling, side view", ", walking under a blue sky, smiling, side view")] {
            var r = GenerationRequest(prompt: prompt)
            r.steps = 25; r.guidanceScale = 6; r.seed = UInt64(ProcessInfo.processInfo.environment["MASK_SEED"] ?? "5")!; r.count = 4
            var cond = try pipe.encodePrompts(r)
            cond.branches[.plain] = cond.branches[.conditional]
            let c = pipe.textEncoder([pipe.tokenizer.encode(rest)])
            cond.branches[.subjectless] = TextConditioning(context: c.expanded([4, c.shape[1], c.shape[2]]).contiguous())
            let g = Recorder()
            let res = try pipe.generate(r, conditioning: cond, guidance: g)
            out.append(["prompt": prompt, "images": res.images.map { $0.map(Int.init) }, "masks": g.masks])
        }
        let data = try JSONSerialization.data(withJSONObject: out)
        try data.write(to: URL(fileURLWithPath: "/tmp/maskprobe.json"))
    }
}
