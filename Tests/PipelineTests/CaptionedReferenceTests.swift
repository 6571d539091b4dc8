import XCTest
@testable import Pipeline

/// Captioned references: a reference's own caption conditions its share of rows, runs without
/// captions take exactly the steps they took before captions existed, and a resumed run keeps
/// its captions.
final class CaptionedReferenceTests: XCTestCase {
    func tuner(captions: [String?]?, rate: Float, dir: String) throws -> AppearanceTuner {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var cfg = AppearanceTuningConfig()
        cfg.steps = 4; cfg.batch = 2; cfg.captionRate = rate; cfg.checkpointEvery = 2
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        let refs = (0..<2).map { _ in Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng) }
        return try AppearanceTuner(pipeline: pipe, references: refs, captions: captions, prompt: "a knight", config: cfg, directory: dir)
    }

    func testCaptionsConditionTheirRowsOnly() throws {
        let dir = NSTemporaryDirectory() + "troupe-captions-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let captions: [String?] = ["a knight waving at night", "a knight sitting in a forest, side view"]
        let bare = try tuner(captions: nil, rate: 0.5, dir: dir)
        let none = try tuner(captions: [nil, nil], rate: 1, dir: dir)
        let never = try tuner(captions: captions, rate: 0, dir: dir)
        let always = try tuner(captions: captions, rate: 1, dir: dir)
        XCTAssertNil(none.state.captions, "references without captions: a run without captions")
        XCTAssertEqual(always.state.captions ?? [], captions)
        let a = try bare.trainStep().losses, b = try none.trainStep().losses
        let c = try never.trainStep().losses, d = try always.trainStep().losses
        XCTAssertEqual(a["eps"]!, b["eps"]!, accuracy: 0, "no captions: the same draws and loss as before captions existed")
        XCTAssertEqual(a["eps"]!, c["eps"]!, accuracy: 0, "rate 0: every row under the character's prompt")
        XCTAssertNotEqual(a["eps"]!, d["eps"]!, "rate 1: every row under its reference's caption")
        // The captions change the contexts, not the draws: the rows are those of the bare run.
        let ctx = always.rowContexts(picks: [0, 1, 1], step: 0)
        let enc = { (p: String) in always.pipeline.textEncoder([always.pipeline.tokenizer.encode(p)]) }
        XCTAssertEqual(ctx.selectingRows([0]).toArray(), enc(captions[0]!).toArray())
        XCTAssertEqual(ctx.selectingRows([2]).toArray(), enc(captions[1]!).toArray())
    }

    func testResumeKeepsTheCaptions() throws {
        let dir = NSTemporaryDirectory() + "troupe-captions-resume-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let captions: [String?] = [nil, "a knight waving at night"]
        let t = try tuner(captions: captions, rate: 0.5, dir: dir)
        try TrainingLoop.run(t) { $0.step < 2 }
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        let refs = (0..<2).map { _ in Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng) }
        let resumed = try AppearanceTuner.resume(pipeline: pipe, references: refs, directory: dir)
        XCTAssertEqual(resumed.state.captions ?? [], captions)
        XCTAssertEqual(resumed.stepsDone, t.stepsDone)
    }

    func testCaptionCountMustMatch() throws {
        XCTAssertThrowsError(try tuner(captions: ["a knight"], rate: 0.5, dir: NSTemporaryDirectory() + "troupe-captions-bad-\(getpid())"))
    }
}
