import XCTest
@testable import Pipeline

/// Stage 1's loss terms on the tiny fixture pipeline: the decoded-x̂₀ reconstruction term is
/// reported for low-noise rows only, and it changes what the adapters learn.
final class AppearanceTuningTests: XCTestCase {
    func tuner(weight: Float, maxT: Int, dir: String) throws -> AppearanceTuner {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var cfg = AppearanceTuningConfig()
        cfg.steps = 3; cfg.batch = 2; cfg.reconstructionWeight = weight; cfg.reconstructionMaxTimestep = maxT
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        let ref = Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng)
        return try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: cfg, directory: dir)
    }

    func testReconstructionTermOnLowNoiseRowsAndItsEffect() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage1-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let off = try tuner(weight: 0, maxT: 1000, dir: dir)
        let on = try tuner(weight: 5, maxT: 1000, dir: dir)
        let never = try tuner(weight: 5, maxT: 0, dir: dir)
        let a = try off.trainStep().losses, b = try on.trainStep().losses, c = try never.trainStep().losses
        XCTAssertNil(a["recon"]); XCTAssertNil(c["recon"], "no row below t = 0")
        let rec = try XCTUnwrap(b["recon"])
        XCTAssertTrue(rec.isFinite && rec > 0)
        XCTAssertEqual(b["eps"]!, a["eps"]!, accuracy: 1e-6, "same draws: the same ε loss before the first update")
        XCTAssertEqual(b["loss"]!, b["eps"]! + 5 * rec, accuracy: 1e-4)
        // After one update the adapters differ: the term has a gradient.
        let name = off.loraNames.first { $0.contains("lora_B") }!
        let d = (off.lora[name]! - on.lora[name]!).square().sum().item()
        XCTAssertGreaterThan(d, 0)
        XCTAssertEqual((off.lora[name]! - never.lora[name]!).square().sum().item(), 0, "weight without qualifying rows: the plain update")
    }
}
