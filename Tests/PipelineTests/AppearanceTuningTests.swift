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

    /// A fresh fixture pipeline and a 3-step tuner at a high learning rate on one random
    /// reference (the same for every call), its config changed by `adjust`.
    func fastTuner(dir: String, _ adjust: (inout AppearanceTuningConfig) -> Void) throws -> (StableDiffusionPipeline, AppearanceTuner) {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var cfg = AppearanceTuningConfig()
        cfg.steps = 3; cfg.batch = 2; cfg.learningRate = 1e-2
        adjust(&cfg)
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        let ref = Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng)
        return (pipe, try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: cfg, directory: dir))
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

    /// Min-SNR-γ weighs the ε rows: γ above every timestep's SNR (~1.2·10³ at t = 0) leaves the
    /// loss and the update as they were; γ = 5 lowers the nearly-clean rows' weight, so the
    /// reported ε loss changes (never upward: every weight ≤ 1 for ε) and so does the update; a
    /// negative γ is refused.
    func testMinSNRWeightingOfTheDiffusionRows() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage1-snr-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Eight rows a step: the draws include timesteps below 150 (SNR > 5).
        let (_, plain) = try fastTuner(dir: dir + "/0") { $0.reconstructionWeight = 0; $0.batch = 8 }
        let (_, wide) = try fastTuner(dir: dir + "/w") { $0.reconstructionWeight = 0; $0.batch = 8; $0.snrGamma = 1e9 }
        let (_, five) = try fastTuner(dir: dir + "/5") { $0.reconstructionWeight = 0; $0.batch = 8; $0.snrGamma = 5 }
        var differs = false
        for _ in 0..<3 {
            let p = try plain.trainStep().losses["eps"]!, w = try wide.trainStep().losses["eps"]!, f = try five.trainStep().losses["eps"]!
            XCTAssertEqual(w, p, accuracy: 1e-5 * max(1, p))
            XCTAssertLessThanOrEqual(f, p + 1e-5)
            if abs(f - p) > 1e-4 { differs = true }
        }
        XCTAssertTrue(differs, "three steps of eight rows drew no timestep with SNR > 5 (t < 150)?")
        let name = plain.loraNames.first { $0.contains("lora_B") }!
        XCTAssertEqual((plain.lora[name]! - wide.lora[name]!).square().sum().item(), 0, accuracy: 1e-10)
        XCTAssertGreaterThan((plain.lora[name]! - five.lora[name]!).square().sum().item(), 0)
        XCTAssertThrowsError(try fastTuner(dir: dir + "/n") { $0.snrGamma = -1 })
    }

    /// With a text-encoder rank the tuner trains adapters on the text encoder's attention and MLP
    /// projections too (their B starts at 0 and moves: the prompts are encoded through them
    /// with gradients), the UNet's adapters and their first step are what they were without
    /// them, and the saved file loads back onto a fresh model with the same text context.
    func testTextEncoderLoRATrainsAndRoundTrips() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage1-te-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func make(_ rank: Int) throws -> (StableDiffusionPipeline, AppearanceTuner) {
            try fastTuner(dir: dir + "/\(rank)") { $0.textEncoderRank = rank }
        }
        let (_, plain) = try make(0)
        let (pipe, te) = try make(2)
        let teNames = te.loraNames.filter { $0.hasPrefix("text_encoder.") }
        XCTAssertEqual(teNames.count, 2 * 6 * pipe.textEncoder.layers.count, "q, k, v, out, fc1, fc2 in every layer, A and B each")
        XCTAssertEqual(te.loraNames.filter { $0.hasPrefix("unet.") }, plain.loraNames)
        XCTAssertEqual(try te.trainStep().losses["eps"]!, try plain.trainStep().losses["eps"]!, accuracy: 1e-6, "B = 0: the first step sees the base text encoder")
        for _ in 0..<2 { _ = try te.trainStep() }
        let moved = teNames.filter { $0.contains("lora_B") }.map { te.lora[$0]!.square().sum().item() }
        XCTAssertTrue(moved.allSatisfy { $0.isFinite } && moved.contains { $0 > 0 }, "the text encoder's adapters got gradients")
        let ids = pipe.tokenizer.encode("a knight waving")
        let tuned = GradMode.noGrad { pipe.textEncoder([ids]) }.toArray()
        try te.saveLoRA(to: dir + "/te.safetensors")
        let fresh = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let base = GradMode.noGrad { fresh.textEncoder([ids]) }.toArray()
        XCTAssertNotEqual(base, tuned)
        try LoRAFile(path: dir + "/te.safetensors").apply(multiplier: 1, unet: fresh.unet, textEncoder: fresh.textEncoder)
        assertClose(GradMode.noGrad { fresh.textEncoder([ids]) }, Tensor(tuned, shape: [1, ids.count, pipe.textEncoder.config.hiddenSize]), tol: 1e-5, "the file's text-encoder adapters")
    }

    /// LoCon (the default, rank 4; here 2): adapters on the ResNet blocks' two convolutions and
    /// nowhere else, B = 0 so the first step is the attention-only step, gradients that move
    /// them, and a saved file that gives a fresh model the tuned UNet's prediction.
    func testConvAdaptersTrainAndRoundTrip() throws {
        XCTAssertEqual(AppearanceTuningConfig().convRank, 4)
        let dir = NSTemporaryDirectory() + "troupe-stage1-locon-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func make(_ rank: Int) throws -> (StableDiffusionPipeline, AppearanceTuner) {
            try fastTuner(dir: dir + "/\(rank)") { $0.convRank = rank }
        }
        let (_, plain) = try make(0)
        let (pipe, locon) = try make(2)
        XCTAssertFalse(plain.loraNames.contains { plain.lora[$0]!.rank == 4 }, "rank 0: attention only")
        let convNames = locon.loraNames.filter { locon.lora[$0]!.rank == 4 }
        let targets = pipe.unet.convs.keys.filter { $0.contains(".resnets.") && ($0.hasSuffix(".conv1") || $0.hasSuffix(".conv2")) }
        XCTAssertFalse(targets.isEmpty)
        XCTAssertEqual(Set(convNames), Set(targets.flatMap { ["unet.\($0).lora_A.weight", "unet.\($0).lora_B.weight"] }))
        XCTAssertEqual(locon.loraNames.filter { locon.lora[$0]!.rank == 2 }, plain.loraNames)
        for name in convNames where name.hasSuffix("lora_A.weight") { XCTAssertEqual(locon.lora[name]!.shape[0], 2) }
        XCTAssertEqual(try locon.trainStep().losses["eps"]!, try plain.trainStep().losses["eps"]!, accuracy: 1e-6, "B = 0: the first step sees the base convolutions")
        let (x, ctx, tuned, base) = try assertAdaptersTrainAndRoundTrip(locon, pipe, names: convNames, file: dir + "/locon.safetensors", "conv")
        XCTAssertGreaterThan((base - tuned).square().sum().item(), 0)
        // Attention alone (the conv adapters removed) is not the tuned prediction.
        for c in pipe.unet.convs.values { c.adapters.removeAll() }
        XCTAssertGreaterThan((GradMode.noGrad { pipe.unet(x, timesteps: [500], context: ctx).sample } - tuned).square().sum().item(), 0)
    }
}

extension AppearanceTuningTests {
    /// Two more steps of `tuner`: the B matrices among `names` moved, and the saved file gives a
    /// fresh fixture model the tuned prediction. Returns the probe input and context, the tuned
    /// prediction and the base model's.
    func assertAdaptersTrainAndRoundTrip(_ tuner: AppearanceTuner, _ pipe: StableDiffusionPipeline, names: [String], file: String,
                                         _ what: String) throws -> (x: Tensor, ctx: Tensor, tuned: Tensor, base: Tensor) {
        for _ in 0..<2 { _ = try tuner.trainStep() }
        let moved = names.filter { $0.contains("lora_B") }.map { tuner.lora[$0]!.square().sum().item() }
        XCTAssertTrue(moved.allSatisfy { $0.isFinite } && moved.contains { $0 > 0 }, "the \(what) adapters got gradients")
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.unet.config.sampleSize ?? 8
        let x = Tensor.randn([1, pipe.unet.config.inChannels, size, size], using: &rng)
        let ctx = GradMode.noGrad { pipe.textEncoder([pipe.tokenizer.encode("a knight")]) }
        let tuned = GradMode.noGrad { pipe.unet(x, timesteps: [500], context: ctx).sample }
        try tuner.saveLoRA(to: file)
        let fresh = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let base = GradMode.noGrad { fresh.unet(x, timesteps: [500], context: ctx).sample }
        try LoRAFile(path: file).apply(multiplier: 1, unet: fresh.unet, textEncoder: fresh.textEncoder)
        assertClose(GradMode.noGrad { fresh.unet(x, timesteps: [500], context: ctx).sample }, tuned, tol: 1e-5, "the file's attention and \(what) adapters")
        return (x, ctx, tuned, base)
    }

    /// Feed-forward adapters sit exactly on the transformer blocks' GEGLU in/out projections,
    /// start at B = 0 (the first step sees the base layers), get gradients, and the saved file
    /// gives a fresh model the tuned prediction.
    func testFeedForwardAdaptersTrainAndRoundTrip() throws {
        XCTAssertEqual(AppearanceTuningConfig().feedForwardRank, 0, "off by default")
        let dir = NSTemporaryDirectory() + "troupe-stage1-ff-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (_, plain) = try fastTuner(dir: dir + "/0") { $0.convRank = 0 }
        let (pipe, ff) = try fastTuner(dir: dir + "/3") { $0.convRank = 0; $0.feedForwardRank = 3 }
        let targets = pipe.unet.linears.keys.filter { $0.hasSuffix(".ff.net.0.proj") || $0.hasSuffix(".ff.net.2") }
        XCTAssertFalse(targets.isEmpty)
        let ffNames = ff.loraNames.filter { !plain.loraNames.contains($0) }
        XCTAssertEqual(Set(ffNames), Set(targets.flatMap { ["unet.\($0).lora_A.weight", "unet.\($0).lora_B.weight"] }))
        for name in ffNames where name.hasSuffix("lora_A.weight") { XCTAssertEqual(ff.lora[name]!.shape[0], 3) }
        XCTAssertEqual(try ff.trainStep().losses["eps"]!, try plain.trainStep().losses["eps"]!, accuracy: 1e-6, "B = 0: the first step sees the base layers")
        _ = try assertAdaptersTrainAndRoundTrip(ff, pipe, names: ffNames, file: dir + "/ff.safetensors", "feed-forward")
    }
}

final class Stage2TuningTests: XCTestCase {
    /// The tiny fixture pipeline and one random reference image at its size.
    func fixtureWithReference(_ rng: inout SplitMixRandom) throws -> (StableDiffusionPipeline, Tensor) {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let size = pipe.vae.config.sampleSize
        return (pipe, Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng))
    }

    /// Stage 2 starts from the given adapters, reports its prior-preservation term, and its
    /// LoRA file says stage 2.
    func testStage2ContinuesStage1WithPriorPreservation() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage2-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMixRandom(seed: 5)
        let (pipe, ref) = try fixtureWithReference(&rng)
        let size = pipe.vae.config.sampleSize
        var c1 = AppearanceTuningConfig(); c1.steps = 2
        let s1 = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: c1, directory: dir + "/1")
        try TrainingLoop.run(s1) { _ in true }
        let stage1 = s1.lora.mapValues { $0.clone() }
        EvalGeneration.removeAdapters(pipe)     // a fresh job loads the model anew
        var c2 = AppearanceTuningConfig.stage2(from: c1); c2.steps = 2; c2.identityWeight = 0
        let s2 = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: c2, directory: dir + "/2", startFrom: stage1,
                                     classImages: [Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng)], classPrompt: "a knight")
        for (k, v) in stage1 { XCTAssertEqual(s2.lora[k]!.toArray(), v.toArray(), "starts from stage 1: \(k)") }
        XCTAssertEqual(s2.phase, "stage2")
        let losses = try s2.trainStep().losses
        let prior = try XCTUnwrap(losses["prior"]); XCTAssertTrue(prior.isFinite && prior > 0)
        XCTAssertEqual(losses["loss"]!, losses["eps"]! + c2.reconstructionWeight * (losses["recon"] ?? 0) + c2.priorWeight * prior, accuracy: 1e-4)
        try s2.saveLoRA(to: dir + "/stage2.safetensors")
        XCTAssertEqual(try SafetensorsFile(path: dir + "/stage2.safetensors").metadata["troupe_stage"], "2")
        XCTAssertThrowsError(try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: { var c = c1; c.rank = 8; return c }(),
                                                 directory: dir + "/3", startFrom: stage1)) { XCTAssertTrue("\($0)".contains("previous stage")) }
    }

    /// A config whose terms lack what they read (a resumed run's config comes from its folder
    /// and may have been edited) is refused with a message naming what is missing, not a trap.
    func testConfigWithoutWhatItsTermsReadIsRefused() throws {
        let dir = NSTemporaryDirectory() + "troupe-stage-refused-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SplitMixRandom(seed: 6)
        let (pipe, ref) = try fixtureWithReference(&rng)
        let cases: [(String, (inout AppearanceTuningConfig) -> Void, [Tensor])] = [
            ("training judge", { $0.poseWeight = 0.05 }, [ref]),
            ("IdentityEncoder", { $0.identityWeight = 0.3 }, [ref]),
            ("class images", { $0.priorWeight = 0.5 }, [ref]),
            ("reference image", { _ in }, []),
        ]
        for (needle, edit, refs) in cases {
            var c = AppearanceTuningConfig(); edit(&c)
            XCTAssertThrowsError(try AppearanceTuner(pipeline: pipe, references: refs, prompt: "a knight", config: c, directory: dir)) {
                XCTAssertTrue("\($0)".contains(needle), "\($0)")
            }
        }
    }
}

/// The references' augmentation against torchvision (tools/fixtures/augmentation.py), and
/// stage 1 encoding the augmented copies.
final class ImageAugmentationTests: XCTestCase {
    func testCropAndJitterMatchTorchvision() throws {
        let f = try Fixtures.file("augmentation.safetensors")
        let img = try f.tensor("image")
        assertClose(img.resampledBilinear(y0: 2, x0: 3, height: 12, width: 12), try f.tensor("crop.2.3.12"), tol: 1e-5, "resized_crop")
        assertClose(img.jitteredColour(brightness: 1.15, contrast: 0.8, saturation: 1.3), try f.tensor("jitter.1.15.0.8.1.3"), tol: 1e-5, "colour jitter")
        var a = ImageAugmentation()
        XCTAssertEqual(a.expand([img], seed: 1).count, 1, "off by default")
        a.crop = 0.2; a.colorJitter = 0.1; a.copies = 3
        let copies = a.expand([img], seed: 1)
        XCTAssertEqual(copies.count, 4)
        XCTAssertEqual(copies[0].toArray(), img.toArray())
        XCTAssertNotEqual(copies[1].toArray(), img.toArray())
        XCTAssertEqual(a.expand([img], seed: 1)[2].toArray(), copies[2].toArray(), "a function of the seed")
        a.crop = 0.9
        XCTAssertThrowsError(try a.validated())
    }

    func testStageOneEncodesTheCopies() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var cfg = AppearanceTuningConfig()
        cfg.steps = 1; cfg.augmentation.crop = 0.15; cfg.augmentation.copies = 2
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        let dir = NSTemporaryDirectory() + "troupe-aug-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try AppearanceTuner(pipeline: pipe, references: [Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng)], prompt: "a knight",
                                    config: cfg, directory: dir)
        XCTAssertEqual(t.images.count, 3)
        XCTAssertTrue(try t.trainStep().losses["loss"]!.isFinite)
    }
}
