// train-decoder on micro models: the loss falls while the encoder stays bit-identical (so the
// UNet's latent space is kept), a resumed run equals an uninterrupted one, and the tuned decoder
// attaches only to models sharing its encoder. Also the reconstruction ceiling's bookkeeping.

import XCTest
@testable import Pipeline

final class DecoderTuningTests: XCTestCase {
    /// An exported micro model (a 2-step VAE, 1-step UNet) in a fresh folder.
    func microModel(initSeed: UInt64 = 1, unetSteps: Int = 1) throws -> String {
        var c = BaseTrainingConfig()
        c.architecture = "micro"
        c.vaeSteps = 2; c.unetSteps = unetSteps; c.vaeBatch = 4; c.unetBatch = 4; c.warmup = 1
        c.initSeed = initSeed
        let dir = tempDir()
        try BaseModelTrainer(directory: dir, config: c, tokenizerDirectory: BaseTrainingTests.tokenizer).run { _ in true }
        return dir + "/model"
    }

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "troupe-decoder-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func config(_ model: String, steps: Int) -> DecoderTuningConfig {
        var c = DecoderTuningConfig(model: model)
        c.steps = steps; c.batch = 4; c.warmup = 2; c.learningRate = 3e-3; c.checkpointEvery = 100
        return c
    }

    /// Mean squared round-trip error on 16 fixed World renders (posterior means: no noise).
    func heldOutError(_ t: DecoderFineTuner) -> Float {
        let world = World(seed: 9009)
        let x = WorldBatch.images(world, (0..<16).map { world.sample($0) })
        return GradMode.noGrad { Tensor.mseLoss(t.vae.decode(t.vae.encode(x).mean), x).item() }
    }

    func testLossFallsAndEncoderStaysFrozen() throws {
        let model = try microModel()
        let t = try DecoderFineTuner(directory: tempDir(), config: config(model, steps: 30), judge: AttributeClassifier(seed: 5))
        let before = t.parameters.mapValues { $0.toArray() }
        let errorBefore = heldOutError(t)
        var perceptual: [Float] = []
        try t.run { e in
            if e.kind == .step { perceptual.append(e.losses["perceptual"]!) }
            return true
        }
        XCTAssertEqual(perceptual.count, 30)
        let errorAfter = heldOutError(t)
        XCTAssertLessThan(errorAfter, errorBefore * 0.8, "held-out reconstruction MSE \(errorBefore) → \(errorAfter)")
        XCTAssertLessThan(perceptual.suffix(5).reduce(0, +), perceptual.prefix(5).reduce(0, +), "perceptual loss should fall too")
        var changed = 0
        for (k, v) in before {
            if DecoderFineTuner.isDecoder(k) { if v != t.parameters[k]!.toArray() { changed += 1 } }
            else { XCTAssertEqual(v, t.parameters[k]!.toArray(), "encoder tensor \(k) changed") }
        }
        XCTAssertEqual(changed, t.decoderNames.count, "every decoder tensor trains")
        XCTAssertTrue(t.decoderNames.contains("post_quant_conv.weight"))
        XCTAssertFalse(t.decoderNames.contains { $0.hasPrefix("encoder.") || $0.hasPrefix("quant_conv.") })
    }

    func testResumedRunEqualsUninterruptedRun() throws {
        let model = try microModel()
        let judge = try AttributeClassifier(seed: 5)
        let straight = try DecoderFineTuner(directory: tempDir(), config: config(model, steps: 4), judge: judge)
        try straight.run { _ in true }
        let dir = tempDir()
        let first = try DecoderFineTuner(directory: dir, config: config(model, steps: 4), judge: judge)
        try first.run { e in !(e.kind == .step && e.step == 2) }
        XCTAssertEqual(first.state.step, 2)
        let resumed = try DecoderFineTuner.resume(directory: dir, judge: judge)
        XCTAssertEqual(resumed.state.step, 2)
        try resumed.run { _ in true }
        for (k, v) in straight.parameters { XCTAssertEqual(v.toArray(), resumed.parameters[k]!.toArray(), "\(k) differs after resume") }
    }

    /// Mean absolute round-trip error over the detail pixels (eyes, accessory) of the same 16 renders.
    func heldOutDetailError(_ t: DecoderFineTuner) -> Float {
        let world = World(seed: 9009)
        let samples = (0..<16).map { world.sample($0) }
        let x = WorldBatch.images(world, samples)
        let mask = samples.flatMap { World.detailPixels($0).map { $0 ? Float(1) : 0 } }
        let error = GradMode.noGrad { ((t.vae.decode(t.vae.encode(x).mean) - x).square() + 1e-12).sqrt() * Tensor(mask, shape: [16, 1, 64, 64]) }
        return error.sum().item() / (3 * mask.reduce(0, +))
    }

    /// The detail term (the pixel loss over each render's eyes and accessory) is reported and
    /// lowers the error there below the same run's without it; a run folder written before the
    /// term existed still resumes, with the term off.
    func testDetailTermLowersTheDetailErrorAndOldRunsResume() throws {
        let model = try microModel()
        let judge = try AttributeClassifier(seed: 5)
        var errors: [Float] = []
        for λ: Float in [0, 20] {
            var c = config(model, steps: 30)
            c.detailWeight = λ
            let t = try DecoderFineTuner(directory: tempDir(), config: c, judge: judge)
            var reported = 0
            try t.run { e in
                if e.kind == .step, e.losses["detail"] != nil { reported += 1 }
                return true
            }
            XCTAssertEqual(reported, λ > 0 ? 30 : 0)
            errors.append(heldOutDetailError(t))
        }
        XCTAssertLessThan(errors[1], errors[0] * 0.97, "detail-pixel error without / with the term: \(errors)")

        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config(model, steps: 4))) as! [String: Any]
        old.removeValue(forKey: "detailWeight")
        let decoded = try JSONDecoder().decode(DecoderTuningConfig.self, from: JSONSerialization.data(withJSONObject: old))
        XCTAssertEqual(decoded, config(model, steps: 4))
    }

    func testTunedDecoderAttachesOnlyToTheSameEncoder() throws {
        let model = try microModel(initSeed: 1)
        let dir = tempDir()
        let t = try DecoderFineTuner(directory: dir, config: config(model, steps: 3), judge: AttributeClassifier(seed: 5))
        try t.run { _ in true }
        // The export is the source model with the tuned VAE: it loads and generates.
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: dir + "/model"))
        var r = GenerationRequest(prompt: "a robot"); r.steps = 2
        XCTAssertEqual(try pipe.generate(r).images.count, 1)
        let saved = try SafetensorsFile(path: dir + "/model/vae/diffusion_pytorch_model.safetensors").tensor("decoder.conv_out.weight").toArray()
        for (s, w) in zip(saved, t.parameters["decoder.conv_out.weight"]!.toArray()) { XCTAssertEqual(s, w, accuracy: abs(w) * 1e-3 + 1e-6) }
        let unetSource = try Data(contentsOf: URL(fileURLWithPath: model + "/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/model/unet/diffusion_pytorch_model.safetensors")), unetSource)

        let other = try microModel(initSeed: 2)
        XCTAssertThrowsError(try DecoderFineTuner.resume(directory: dir, judge: AttributeClassifier(seed: 5), model: other)) { e in
            XCTAssertTrue("\(e)".contains("encoder differs"), "\(e)")
        }
        // A later export of the same run (same VAE, UNet trained further): the finished
        // tune re-exports with that UNet and the tuned decoder.
        let later = try microModel(initSeed: 1, unetSteps: 2)
        let again = try DecoderFineTuner.resume(directory: dir, judge: AttributeClassifier(seed: 5), model: later)
        XCTAssertEqual(again.state.config.model, later)
        try again.run { _ in true }
        let unetLater = try Data(contentsOf: URL(fileURLWithPath: later + "/unet/diffusion_pytorch_model.safetensors"))
        XCTAssertNotEqual(unetLater, unetSource)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/model/unet/diffusion_pytorch_model.safetensors")), unetLater)
        XCTAssertEqual(try SafetensorsFile(path: dir + "/model/vae/diffusion_pytorch_model.safetensors").tensor("decoder.conv_out.weight").toArray(), saved)
    }

    func testReconstructionCeilingReadsRendersAndRoundTrips() throws {
        let judgePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/judges/attributes-eval.safetensors").standardized.path
        let judge = try AttributeClassifier(weights: WeightReader(paths: [judgePath]))
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: try microModel()))
        let s = ReconstructionCeiling(vae: pipe.vae, judge: judge).measure(count: 24, batch: 8)
        XCTAssertEqual(s.images, 24)
        // The judge reads clean renders (held-out accuracy ≥ 0.99); an untrained micro VAE's
        // round trips lose most of it.
        for a in WorldAttribute.allCases { XCTAssertGreaterThanOrEqual(s.original[a]!, 0.9, "\(a)") }
        XCTAssertLessThan(s.reconstructed[.expression]!, 0.9)
        XCTAssertGreaterThan(s.mse, 0.01)
        XCTAssertEqual(Set(s.latentSensitivity.keys), [.pose, .expression, .background, .view])
        for (a, v) in s.latentSensitivity { XCTAssertTrue(v.isFinite && v > 0, "\(a) \(v)") }
    }
}

extension DecoderTuningTests {
    /// A base run takes a tuned decoder (same encoder only) and trains its UNet with the x̂₀
    /// attribute loss decoded through it; a resumed run repeats the uninterrupted one exactly.
    func testBaseRunTakesTunedDecoderAndJudgeLoss() throws {
        let model = try microModel()
        let tuneDir = tempDir()
        try DecoderFineTuner(directory: tuneDir, config: config(model, steps: 2), judge: AttributeClassifier(seed: 5)).run { _ in true }

        var c = BaseTrainingConfig()
        c.architecture = "micro"; c.vaeSteps = 2; c.unetSteps = 0; c.vaeBatch = 4; c.unetBatch = 8; c.warmup = 1
        c.judgeLossMaxTimestep = 1000; c.judgeLossRows = 3
        func run(_ dir: String, stopAt: Int?) throws -> BaseModelTrainer {
            let t = try BaseModelTrainer(directory: dir, config: c, tokenizerDirectory: BaseTrainingTests.tokenizer)
            try t.run { _ in true }   // the VAE phase only (0 UNet steps so far)
            t.extend(unetSteps: 4)
            try t.replaceDecoder(from: tuneDir + "/model")
            t.setJudgeLoss(weight: 0.5, judge: try AttributeClassifier(seed: 6))
            var judgeLosses: [Float] = []
            try t.run { e in
                if e.kind == .step { judgeLosses.append(e.losses["judge"] ?? .nan) }
                return !(e.kind == .step && e.step == stopAt)
            }
            XCTAssertEqual(judgeLosses.count, stopAt ?? 4)
            XCTAssertTrue(judgeLosses.allSatisfy { $0.isFinite && $0 > 0 }, "\(judgeLosses)")
            return t
        }
        let straight = try run(tempDir(), stopAt: nil)
        XCTAssertEqual(straight.state.phase, .done)
        let tuned = try SafetensorsFile(path: tuneDir + "/model/vae/diffusion_pytorch_model.safetensors").tensor("decoder.conv_out.weight").toArray()
        let exported = try SafetensorsFile(path: straight.directory + "/model/vae/diffusion_pytorch_model.safetensors").tensor("decoder.conv_out.weight").toArray()
        XCTAssertEqual(exported, tuned, "the export carries the tuned decoder")

        let dir = tempDir()
        _ = try run(dir, stopAt: 2)
        let resumed = try BaseModelTrainer.resume(directory: dir, tokenizerDirectory: BaseTrainingTests.tokenizer)
        XCTAssertEqual(resumed.state.config.judgeLossWeight, 0.5)
        resumed.setJudgeLoss(weight: 0.5, judge: try AttributeClassifier(seed: 6))
        try resumed.run { _ in true }
        for (k, t) in straight.flatParameters { XCTAssertEqual(t.toArray(), resumed.flatParameters[k]!.toArray(), "\(k) differs after resume") }

        let other = try microModel(initSeed: 2)
        XCTAssertThrowsError(try straight.replaceDecoder(from: other)) { XCTAssertTrue("\($0)".contains("encoder differs"), "\($0)") }
    }
}
