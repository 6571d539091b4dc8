import XCTest
@testable import Pipeline

final class IdentityEncoderTests: XCTestCase {
    /// Unit-length vectors; a short contrastive run lowers the loss and retrieves held-out
    /// identities far above chance (1/50); save → load gives the same vectors.
    func testTrainsRetrievesAndRoundTrips() throws {
        var cfg = IdentityEncoderTraining()
        cfg.steps = 60; cfg.batch = 16
        var losses: [Float] = []
        let enc = try cfg.run { _, l in losses.append(l); return true }
        XCTAssertEqual(losses.count, 60)
        let early = losses.prefix(5).reduce(0, +) / 5, late = losses.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(late, early * 0.7, "loss \(early) → \(late)")
        let top1 = IdentityEncoderTraining.retrieval(enc, evalSeed: 4242, count: 50)
        XCTAssertGreaterThan(top1, 0.3, "retrieval \(top1) (chance 0.02)")

        var rng = SplitMixRandom(seed: 1)
        let x = Tensor.rand([3, 3, 64, 64], low: -1, high: 1, using: &rng)
        let e = enc.embed(x).toArray()
        for b in 0..<3 {
            let v = e[(b * 128)..<((b + 1) * 128)]
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-4)
        }
        let path = NSTemporaryDirectory() + "troupe-ienc-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try enc.save(to: path, metadata: [:])
        let back = try IdentityEncoder(weights: WeightReader(paths: [path]))
        XCTAssertEqual(back.embed(x).toArray(), e)
    }
}
