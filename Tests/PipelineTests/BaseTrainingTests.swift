// train-base on the micro architecture: losses fall in a handful of steps, a run stopped and
// resumed from its checkpoint ends bit-identical to an uninterrupted run, and the exported
// diffusers folder loads through the normal pipeline and generates.

import XCTest
@testable import Pipeline

final class BaseTrainingTests: XCTestCase {
    static let tokenizer = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../models/clip-tokenizer").standardized.path

    func microConfig(vae: Int, unet: Int) -> BaseTrainingConfig {
        var c = BaseTrainingConfig()
        c.architecture = "micro"
        c.vaeSteps = vae; c.unetSteps = unet
        c.vaeBatch = 4; c.unetBatch = 4
        c.warmup = 2; c.checkpointEvery = 100
        return c
    }

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "troupe-base-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func testVAEReconstructionLossFalls() throws {
        var c = microConfig(vae: 40, unet: 0)
        c.vaeLearningRate = 3e-3
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        var recon: [Float] = []
        try t.run { e in
            if e.kind == .step, e.phase == "vae" { recon.append(e.losses["recon"]!) }
            return true
        }
        XCTAssertEqual(recon.count, 40)
        let first = recon.prefix(5).reduce(0, +) / 5, last = recon.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(last, first * 0.7, "VAE reconstruction loss \(first) → \(last)")
        XCTAssertEqual(t.state.phase, .done)
        XCTAssertTrue(t.state.scalingFactor.isFinite && t.state.scalingFactor > 0)
    }

    func testUNetLossFalls() throws {
        var c = microConfig(vae: 2, unet: 40)
        c.unetLearningRate = 3e-3
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        var losses: [Float] = []
        try t.run { e in
            if e.kind == .step, e.phase == "unet" { losses.append(e.losses["loss"]!) }
            return true
        }
        let first = losses.prefix(8).reduce(0, +) / 8, last = losses.suffix(8).reduce(0, +) / 8
        XCTAssertLessThan(last, first * 0.9, "ε-MSE \(first) → \(last)")
    }

    func testResumedRunEqualsUninterruptedRun() throws {
        let c = microConfig(vae: 3, unet: 4)
        let straightDir = tempDir(), pausedDir = tempDir()
        let straight = try BaseModelTrainer(directory: straightDir, config: c, tokenizerDirectory: Self.tokenizer)
        try straight.run { _ in true }

        // Stop once in each phase: after VAE step 2 and after UNet step 1.
        var first = try BaseModelTrainer(directory: pausedDir, config: c, tokenizerDirectory: Self.tokenizer)
        try first.run { e in !(e.kind == .step && e.phase == "vae" && e.step == 2) }
        XCTAssertEqual(first.state.phase, .vae); XCTAssertEqual(first.state.step, 2)
        first = try BaseModelTrainer.resume(directory: pausedDir, tokenizerDirectory: Self.tokenizer)
        XCTAssertEqual(first.state.step, 2)
        try first.run { e in !(e.kind == .step && e.phase == "unet" && e.step == 1) }
        XCTAssertEqual(first.state.phase, .unet); XCTAssertEqual(first.state.step, 1)
        let resumed = try BaseModelTrainer.resume(directory: pausedDir, tokenizerDirectory: Self.tokenizer)
        try resumed.run { _ in true }

        XCTAssertEqual(resumed.state.scalingFactor, straight.state.scalingFactor)
        let a = straight.flatParameters, b = resumed.flatParameters
        XCTAssertEqual(Set(a.keys), Set(b.keys))
        for (k, t) in a { XCTAssertEqual(t.toArray(), b[k]!.toArray(), "parameter \(k) differs after resume") }
        for (k, t) in straight.ema { XCTAssertEqual(t.toArray(), resumed.ema[k]!.toArray(), "EMA \(k) differs after resume") }
    }

    func testExportedFolderLoadsAndGenerates() throws {
        let dir = tempDir()
        let t = try BaseModelTrainer(directory: dir, config: microConfig(vae: 1, unet: 1), tokenizerDirectory: Self.tokenizer)
        try t.run { _ in true }
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: dir + "/model"))
        XCTAssertEqual(pipe.nativeSize, 64)
        XCTAssertEqual(pipe.vae.config.scalingFactor, t.state.scalingFactor, accuracy: 1e-6)
        var r = GenerationRequest(prompt: "a knight waving")
        r.steps = 3; r.seed = 1
        let out = try pipe.generate(r)
        XCTAssertEqual(out.images.count, 1)
        XCTAssertEqual(out.images[0].count, 64 * 64 * 3)
        // fp16 export: the UNet's conv_in weight equals the EMA value rounded to half.
        let file = try SafetensorsFile(path: dir + "/model/unet/diffusion_pytorch_model.safetensors")
        XCTAssertEqual(try file.entry("conv_in.weight").dtype, .f16)
        let saved = try file.tensor("conv_in.weight").toArray(), ema = t.ema["unet.conv_in.weight"]!.toArray()
        for (s, e) in zip(saved, ema) { XCTAssertEqual(s, e, accuracy: abs(e) * 1e-3 + 1e-6) }
    }

    func testResumeWithoutCheckpointSaysSo() {
        XCTAssertThrowsError(try BaseModelTrainer.resume(directory: tempDir(), tokenizerDirectory: Self.tokenizer)) { e in
            XCTAssertTrue("\(e)".contains("no checkpoint"), "\(e)")
        }
    }
}

extension BaseTrainingTests {
    func testContinuingFromAnExportedFolderStartsWhereItLeftOff() throws {
        let dir = tempDir()
        let c = microConfig(vae: 1, unet: 2)
        let first = try BaseModelTrainer(directory: dir, config: c, tokenizerDirectory: Self.tokenizer)
        try first.run { _ in true }
        var more = c
        more.unetSteps = 5
        let next = try BaseModelTrainer.continuing(from: dir + "/model", directory: tempDir(), config: more, step: 2, tokenizerDirectory: Self.tokenizer)
        XCTAssertEqual(next.state.phase, .unet); XCTAssertEqual(next.state.step, 2)
        XCTAssertEqual(next.state.config.unetWarmupFrom, 2, "fresh AdamW moments: the warm-up starts again")
        XCTAssertEqual(next.state.scalingFactor, first.state.scalingFactor, accuracy: 1e-6)
        // The UNet starts at the exported (fp16-rounded EMA) weights.
        let a = first.ema["unet.conv_out.weight"]!.toArray(), b = next.parameters["unet"]!["conv_out.weight"]!.toArray()
        for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: abs(x) * 1e-3 + 1e-6) }
        var rates: [Int: Float] = [:]
        try next.run { e in if e.kind == .step { rates[e.step] = e.learningRate }; return true }
        // Event step s reports optimiser step s − 1's rate: warm-up 2 counted from step 2.
        let base = c.unetLearningRate
        XCTAssertEqual(rates, [3: 0, 4: base / 2, 5: base])
    }

    /// From scratch the factor is the warmup–stable–decay (or constant) schedule it always was;
    /// a continued run warms up from its own start step and still cools down to the end.
    func testUNetLearningRateWarmsUpFromWhereTheRunStarted() {
        var c = BaseTrainingConfig()
        c.warmup = 200; c.unetSteps = 10_000
        for s in [0, 50, 199, 200, 5000, 9999] {
            XCTAssertEqual(c.unetLearningRateFactor(at: s), LearningRateSchedule.constantWithWarmup(warmup: 200).factor(at: s), "step \(s)")
        }
        c.unetDecaySteps = 1000
        let wsd = LearningRateSchedule.warmupStableDecay(warmup: 200, decayStart: 9000, total: 10_000)
        for s in [0, 50, 200, 8999, 9000, 9500, 9999] {
            XCTAssertEqual(c.unetLearningRateFactor(at: s), wsd.factor(at: s), accuracy: 1e-7, "step \(s)")
        }
        c.unetWarmupFrom = 4000
        XCTAssertEqual(c.unetLearningRateFactor(at: 4000), 0)
        XCTAssertEqual(c.unetLearningRateFactor(at: 4100), 0.5)
        XCTAssertEqual(c.unetLearningRateFactor(at: 4200), 1)
        XCTAssertEqual(c.unetLearningRateFactor(at: 9500), wsd.factor(at: 9500), accuracy: 1e-7)
    }

    /// While the probe fits (`captionProbeFitUntil`), its loss trains its own head and nothing
    /// else: the text encoder ends bit-identical to a run without the probe; after, it moves it.
    func testAFittingProbeTrainsItsHeadAndLeavesTheEncoderAlone() throws {
        func run(probe: Float, fitUntil: Int) throws -> BaseModelTrainer {
            var c = microConfig(vae: 1, unet: 3)
            c.captionProbeWeight = probe; c.captionProbeFitUntil = fitUntil
            let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
            try t.run { _ in true }
            return t
        }
        let plain = try run(probe: 0, fitUntil: 0), fitting = try run(probe: 5, fitUntil: 100), training = try run(probe: 5, fitUntil: 0)
        let key = "text_encoder.encoder.layers.0.self_attn.q_proj.weight"
        XCTAssertNotNil(plain.flatParameters[key])
        XCTAssertEqual(fitting.flatParameters[key]!.toArray(), plain.flatParameters[key]!.toArray())
        XCTAssertNotEqual(training.flatParameters[key]!.toArray(), plain.flatParameters[key]!.toArray())
        XCTAssertNotEqual(fitting.probe.linear.weight.tensor.toArray(), plain.probe.linear.weight.tensor.toArray(), "the head fits")
    }
}

extension BaseTrainingTests {
    /// A constant-rate run resumed with more steps and a cooldown: the rate follows the
    /// warmup–stable–decay schedule from the resumed step on, the setting survives a checkpoint,
    /// and the parameters keep moving while the rate is above 0.
    func testResumedRunCoolsTheLearningRateDown() throws {
        let dir = tempDir()
        var c = microConfig(vae: 1, unet: 2)
        c.warmup = 1
        try BaseModelTrainer(directory: dir, config: c, tokenizerDirectory: Self.tokenizer).run { _ in true }

        let cooled = try BaseModelTrainer.resume(directory: dir, tokenizerDirectory: Self.tokenizer)
        cooled.extend(unetSteps: 6)
        cooled.reconfigureUNetPhase { $0.unetDecaySteps = 4 }
        var rates: [Int: Float] = [:]
        try cooled.run { e in
            if e.kind == .step { rates[e.step] = e.learningRate }
            return !(e.kind == .step && e.step == 4)
        }
        let again = try BaseModelTrainer.resume(directory: dir, tokenizerDirectory: Self.tokenizer)
        XCTAssertEqual(again.state.config.unetDecaySteps, 4, "the cooldown is part of the run's saved config")
        try again.run { e in
            if e.kind == .step { rates[e.step] = e.learningRate }
            return true
        }
        // Event step s reports the rate of optimiser step s − 1; the cooldown spans steps 2…5.
        let base = c.unetLearningRate
        XCTAssertEqual(Set(rates.keys), [3, 4, 5, 6])
        for s in 3...6 {
            let progress = Float(s - 1 - 2) / 4
            XCTAssertEqual(rates[s]!, base * (1 - progress.squareRoot()), accuracy: base * 1e-5, "rate at step \(s)")
        }
        XCTAssertLessThan(rates[6]!, rates[3]!)
    }
}

extension BaseTrainingTests {
    func testFaceWeightsCoverTheFaceCellsWithMeanOne() {
        let w = BaseModelTrainer.faceWeights(height: 16, width: 16, weight: 4, imageSize: 64).toArray()
        XCTAssertEqual(w.reduce(0, +) / 256, 1, accuracy: 1e-5)
        let high = w.max()!, low = w.min()!
        XCTAssertEqual(high / low, 5, accuracy: 1e-4)
        for y in 0..<16 { for x in 0..<16 {
            let overlaps = World.expressionRegions.contains { f in x * 4 < f.x1 && x * 4 + 4 > f.x0 && y * 4 < f.y1 && y * 4 + 4 > f.y0 }
            XCTAssertEqual(w[y * 16 + x], overlaps ? high : low, "cell (\(x), \(y))")
        } }
        XCTAssertEqual(w.filter { $0 == high }.count, 30 + 12, "face 6×5 cells, balloon 4×3")
    }

    func testFaceWeightedLossTrainsAndReportsBothLosses() throws {
        var c = microConfig(vae: 2, unet: 3)
        c.faceLossWeight = 4; c.vaeFaceWeight = 4
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        var seen: [[String: Float]] = [], vae: [[String: Float]] = []
        try t.run { e in
            if e.kind == .step && e.phase == "unet" { seen.append(e.losses) }
            if e.kind == .step && e.phase == "vae" { vae.append(e.losses) }
            return true
        }
        XCTAssertEqual(seen.count, 3)
        XCTAssertEqual(vae.count, 2)
        for l in vae {
            let plain = try XCTUnwrap(l["recon"]), weighted = try XCTUnwrap(l["face_weighted"])
            XCTAssertTrue(plain.isFinite && weighted.isFinite)
            XCTAssertNotEqual(plain, weighted)
        }
        for l in seen {
            let plain = try XCTUnwrap(l["loss"]), weighted = try XCTUnwrap(l["face_weighted"])
            XCTAssertTrue(plain.isFinite && weighted.isFinite)
            XCTAssertNotEqual(plain, weighted, "the face cells weigh more than the rest")
        }
    }
}

extension BaseTrainingTests {
    /// A contrast term reports a positive finite loss on some steps, and — same samples, noise
    /// and timesteps as a run without it — only its gradient can make the text encoder's token
    /// embeddings differ from that run's.
    func assertContrastTrains(batch: Int, lossKey: String, _ turnOn: (inout BaseTrainingConfig) -> Void) throws {
        var c = microConfig(vae: 1, unet: 4)
        c.unetBatch = batch
        let plain = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        try plain.run { _ in true }
        turnOn(&c)
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        var contrast: [Float] = []
        try t.run { e in
            if e.kind == .step && e.phase == "unet", let v = e.losses[lossKey] { contrast.append(v) }
            return true
        }
        XCTAssertFalse(contrast.isEmpty, "batches of \(batch) have qualifying rows at t in [100, 800)")
        for v in contrast { XCTAssertTrue(v.isFinite && v > 0) }
        let key = "text_encoder.embeddings.token_embedding.weight"
        XCTAssertNotEqual(plain.flatParameters[key]!.toArray(), t.flatParameters[key]!.toArray())
    }

    func testExpressionContrastTrainsAndMovesTheTextEncoder() throws {
        try assertContrastTrains(batch: 4, lossKey: "contrast") { $0.expressionContrastWeight = 0.5 }
    }

    func testColorContrastTrainsAndMovesTheTextEncoder() throws {
        try assertContrastTrains(batch: 8, lossKey: "color_contrast") { $0.colorContrastWeight = 0.5 }
    }

    /// The caption contrast is the cross-entropy of minus the masked squared ε errors, the row's
    /// own caption first: recomputed here from separate UNet calls on one row.
    func testCaptionContrastIsTheCrossEntropyOfMaskedErrors() throws {
        let t = try BaseModelTrainer(directory: tempDir(), config: microConfig(vae: 1, unet: 0), tokenizerDirectory: Self.tokenizer)
        var r = SplitMixRandom(seed: 11)
        let xt = Tensor.randn([2, 4, 16, 16], using: &r), noise = Tensor.randn([2, 4, 16, 16], using: &r)
        let captions = ["a knight in a red outfit", "a knight in a blue outfit", "a knight in a green outfit"]
        let timesteps = [300, 500]
        func eps(_ caption: String, _ row: Int) -> Tensor {
            t.unet(xt.selectingRows([row]), timesteps: [Float(timesteps[row])], context: t.textEncoder([t.tokenizer.encode(caption)])).sample
        }
        let cells = (0..<256).map { Float($0 % 3 == 0 ? 1 : 0) }
        let got = GradMode.noGrad {
            let own = Tensor.concat([eps("a wizard", 0), eps(captions[0], 1)], dim: 0)
            return t.captionContrastLoss([.init(row: 1, alternatives: Array(captions.dropFirst()), cells: cells)],
                                         xt: xt, eps: own, noise: noise, timesteps: timesteps).item()
        }
        let logits: [Double] = GradMode.noGrad {
            captions.map { c in
                let e = eps(c, 1).toArray(), n = noise.selectingRows([1]).toArray()
                var s = 0.0
                for i in e.indices where cells[i % 256] > 0 { s += Double((e[i] - n[i]) * (e[i] - n[i])) }
                return -s
            }
        }
        let m = logits.max()!, want = -(logits[0] - m - log(logits.map { exp($0 - m) }.reduce(0, +)))
        XCTAssertEqual(Double(got), want, accuracy: 1e-4 * max(1, want))
    }
}

extension BaseTrainingTests {
    func testArchitecturesResolveWithMatchingLatentChannels() throws {
        for name in ["mini", "mini-latent8", "micro"] {
            var c = BaseTrainingConfig()
            c.architecture = name
            let a = try c.resolvedArchitecture
            XCTAssertEqual(a.unet.inChannels, a.vae.latentChannels, name)
            XCTAssertEqual(a.unet.outChannels, a.vae.latentChannels, name)
        }
        XCTAssertEqual(BaseModelArchitecture.miniLatent8.vae.latentChannels, 8)
        var bad = BaseTrainingConfig()
        bad.architecture = "huge"
        XCTAssertThrowsError(try bad.resolvedArchitecture)
    }
}

extension BaseTrainingTests {
    /// With the face-weighted loss, both contrasts and the judge loss all on, the minimised
    /// total is the sum of them all (an earlier version kept only the judge term).
    func testEveryLossThatIsOnAddsToTheTotal() throws {
        var c = microConfig(vae: 1, unet: 6)
        c.faceLossWeight = 3; c.expressionContrastWeight = 0.5; c.colorContrastWeight = 0.3; c.judgeLossWeight = 0.25
        c.judgeLossMaxTimestep = 1000
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        t.setJudgeLoss(weight: 0.25, judge: try AttributeClassifier(seed: 3))
        var checked = 0
        try t.run { e in
            guard e.kind == .step, e.phase == "unet" else { return true }
            let l = e.losses
            guard let face = l["face_weighted"], let total = l["total"] else { XCTFail("losses \(l)"); return false }
            let want = face + (l["contrast"] ?? 0) * 0.5 + (l["color_contrast"] ?? 0) * 0.3 + (l["judge"] ?? 0) * 0.25
            XCTAssertEqual(total, want, accuracy: 1e-5 * max(1, abs(want)), "\(l)")
            if l["contrast"] != nil && l["judge"] != nil { checked += 1 }
            return true
        }
        XCTAssertGreaterThan(checked, 0, "at least one step has all three terms")
    }
}

extension BaseTrainingTests {
    /// The detail term is λ · mean((ε̂ − ε)² · mask) with the mask the latent cells any named
    /// detail pixel falls in; it adds to the total, and a batch naming no detail has none.
    func testDetailLossWeighsTheCellsOfNamedDetails() throws {
        var pixels = [Bool](repeating: false, count: 64 * 64)
        pixels[10 * 64 + 21] = true; pixels[11 * 64 + 22] = true; pixels[40 * 64 + 63] = true
        let m = BaseModelTrainer.detailMask(pixels, height: 16, width: 16, imageSize: 64)
        XCTAssertEqual(m.indices.filter { m[$0] == 1 }, [2 * 16 + 5, 10 * 16 + 15])
        XCTAssertEqual(BaseModelTrainer.detailMask([], height: 16, width: 16, imageSize: 64), [Float](repeating: 0, count: 256))

        let w = World(seed: 4)
        let named = (0..<400).map { w.sample($0) }.first { !World.namedDetailPixels($0).isEmpty }!
        let plain = (0..<400).map { w.sample($0) }.first { World.namedDetailPixels($0).isEmpty }!
        var r = SplitMixRandom(seed: 1)
        let eps = Tensor.randn([2, 4, 16, 16], using: &r), noise = Tensor.randn([2, 4, 16, 16], using: &r)
        let loss = try XCTUnwrap(BaseModelTrainer.detailLoss(eps, noise, samples: [plain, named], weight: 3, imageSize: 64)).item()
        let cells = BaseModelTrainer.detailMask(World.namedDetailPixels(named), height: 16, width: 16, imageSize: 64)
        let e = eps.toArray(), n = noise.toArray()
        var want: Double = 0
        for c in 0..<4 { for i in 0..<256 where cells[i] == 1 { let k = (4 + c) * 256 + i; want += Double((e[k] - n[k]) * (e[k] - n[k])) } }
        want = 3 * want / Double(2 * 4 * 256)
        XCTAssertEqual(Double(loss), want, accuracy: 1e-5 * want)
        XCTAssertNil(BaseModelTrainer.detailLoss(eps, noise, samples: [plain, plain], weight: 3, imageSize: 64))

        var c = microConfig(vae: 1, unet: 6)
        c.detailLossWeight = 5
        let t = try BaseModelTrainer(directory: tempDir(), config: c, tokenizerDirectory: Self.tokenizer)
        var withDetail = 0
        try t.run { e in
            guard e.kind == .step, e.phase == "unet" else { return true }
            let l = e.losses
            XCTAssertEqual(l["total"]!, l["loss"]! + (l["detail"] ?? 0), accuracy: 1e-5, "\(l)")
            if let d = l["detail"] { XCTAssertTrue(d.isFinite && d > 0); withDetail += 1 }
            return true
        }
        XCTAssertGreaterThan(withDetail, 0, "some batch of 4 names an accessory or eye colour")
    }
}
