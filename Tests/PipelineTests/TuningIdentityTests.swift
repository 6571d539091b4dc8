import XCTest
@testable import Pipeline

/// A stage trained with the identity embedding fed to the UNet (TuningIdentity) on the tiny
/// fixture pipeline and its IP-Adapter: the tokens reach the denoiser and the LoRA's gradient,
/// scale 0 is the plain stage bit for bit, each row reads another reference, and a run that
/// trained with the embedding refuses to go on without it.
final class TuningIdentityTests: XCTestCase {
    func testStageTrainsWithTheIdentityEmbedding() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage-identity-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let adapter = try IdentityAdapter.load(path: Fixtures.url("sd/ip-adapter-a.safetensors").path, unet: pipe.unet)
        var rng = SplitMixRandom(seed: 12)
        let size = pipe.vae.config.sampleSize
        let refs = (0..<3).map { _ in Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng) }
        let identity = try TuningIdentity(adapter: adapter, features: refs.map { _ in Tensor.rand([1, adapter.inputWidth], low: -1, high: 1, using: &rng) })
        var off = AppearanceTuningConfig(); off.steps = 2; off.batch = 2
        var on = off; on.identityAdapterScale = 1
        func tuner(_ c: AppearanceTuningConfig, _ id: TuningIdentity?, _ name: String) throws -> AppearanceTuner {
            EvalGeneration.removeAdapters(pipe)
            return try AppearanceTuner(pipeline: pipe, references: refs, prompt: "a knight", config: c, directory: dir + "/" + name, identity: id)
        }
        let plain = try tuner(off, nil, "plain"), plainLosses = try plain.trainStep().losses
        let plainB = plain.lora.mapValues { $0.toArray() }
        // Scale 0: the embedding is not read and no draw is taken for it.
        let ignored = try tuner(off, identity, "ignored"), ignoredLosses = try ignored.trainStep().losses
        XCTAssertEqual(ignoredLosses["loss"], plainLosses["loss"])
        for (k, v) in plainB { XCTAssertEqual(ignored.lora[k]!.toArray(), v, k) }
        // Scale 1: another ε prediction, and the update differs.
        let fed = try tuner(on, identity, "fed"), fedLosses = try fed.trainStep().losses
        let eps = try XCTUnwrap(fedLosses["eps"])
        XCTAssertTrue(eps.isFinite)
        XCTAssertNotEqual(eps, plainLosses["eps"])
        let name = fed.loraNames.first { $0.contains("attn2.to_q.lora_B") }!
        XCTAssertNotEqual(fed.lora[name]!.toArray(), plainB[name]!, "the identity path's gradient reaches to_q's LoRA")
        try fed.saveCheckpoint()
        try fed.saveLoRA(to: dir + "/fed.safetensors")
        XCTAssertEqual(try SafetensorsFile(path: dir + "/fed.safetensors").metadata["troupe_identity_scale"], "1.0")
        // A run that trained with it resumes with it, and refuses to go on without it.
        EvalGeneration.removeAdapters(pipe)
        XCTAssertThrowsError(try AppearanceTuner.resume(pipeline: pipe, references: refs, directory: dir + "/fed")) {
            XCTAssertTrue("\($0)".contains("needs the identity adapter"), "\($0)")
        }
        XCTAssertThrowsError(try tuner(on, try TuningIdentity(adapter: adapter, features: [Tensor(zeros: [1, adapter.inputWidth])]), "short")) {
            XCTAssertTrue("\($0)".contains("1 references' tokens for 3 references"), "\($0)")
        }
        XCTAssertThrowsError(try TuningIdentity(adapter: adapter, features: [Tensor(zeros: [1, adapter.inputWidth + 1])]))
        var nan = on; nan.identityAdapterScale = .nan
        XCTAssertThrowsError(try tuner(nan, identity, "nan")) { XCTAssertTrue("\($0)".contains("finite"), "\($0)") }
        let resumed = try AppearanceTuner.resume(pipeline: pipe, references: refs, directory: dir + "/fed", identity: identity)
        XCTAssertEqual(resumed.state.config.identityAdapterScale, 1)
        XCTAssertEqual(resumed.stepsDone, 1)
    }

    /// Each row reads another reference's tokens (its own only when it is the only one), and
    /// every other reference is drawn.
    func testRowsReadAnotherReference() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let adapter = try IdentityAdapter.load(path: Fixtures.url("sd/ip-adapter-a.safetensors").path, unet: pipe.unet)
        let zero = Tensor(zeros: [1, adapter.inputWidth])
        let three = try TuningIdentity(adapter: adapter, features: [zero, zero, zero])
        var r = SplitMixRandom(seed: 3)
        for own in 0..<3 {
            let drawn = Set((0..<40).map { _ in three.source(for: own, &r) })
            XCTAssertEqual(drawn, Set(0..<3).subtracting([own]))
        }
        let one = try TuningIdentity(adapter: adapter, features: [zero])
        XCTAssertEqual(one.source(for: 0, &r), 0)
    }
}
