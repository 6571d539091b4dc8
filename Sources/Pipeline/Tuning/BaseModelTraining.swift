// `troupe train-base`: trains an SD 1.x-architecture model from scratch on World samples
// generated on the fly, in two phases.
//   1. VAE: x̂ = D(z), z = μ + σ·ε from E(x); L = ‖x̂ − x‖² + w_KL·KL(N(μ,σ²) ‖ N(0,1)) (LDM's
//      autoencoder objective without the GAN/LPIPS terms; the sprites are flat-shaded). At the
//      end the latent scale 1/std(z) becomes vae/config.json's scaling_factor.
//   2. Text encoder + UNet, jointly (the VAE frozen): z₀ = scaling·(μ + σ·ε), t ~ U{0…999},
//      x_t = √ᾱ_t z₀ + √(1−ᾱ_t) ε, L = ‖ε̂(x_t, t, CLIP(caption)) − ε‖² (DDPM's simple loss, as
//      diffusers' train_text_to_image.py). About 10% of World captions are empty, which trains
//      the unconditional branch for classifier-free guidance. An exponential moving average of
//      the weights is what gets exported (constant LR after warm-up + EMA, so a run stopped at
//      any checkpoint yields a usable model).
// Every sample, noise draw and timestep is a function of (seed, phase, step), so a resumed run
// repeats exactly the steps an uninterrupted run would have taken.

import Foundation

public final class BaseModelTrainer: Trainer {
    public enum Phase: String, Codable, Sendable { case vae, unet, done }

    /// What a checkpoint's state.json holds.
    public struct State: Codable, Sendable, VersionedTrainingState {
        public var version = 1
        public var config: BaseTrainingConfig
        public var phase: Phase = .vae
        /// Steps completed in the current phase.
        public var step = 0
        public var scalingFactor: Float = 1
        /// Wall time spent so far, over all pieces of the run.
        public var seconds: Double = 0
    }


    public let directory: String
    public let tokenizerDirectory: String
    public let architecture: BaseModelArchitecture
    public private(set) var state: State
    let tokenizer: CLIPTokenizer
    let vae: AutoencoderKL, textEncoder: CLIPTextModel, unet: UNet2DConditionModel
    /// Trainable tensors by component ("vae", "text_encoder", "unet") and key.
    let parameters: [String: [String: Tensor]]
    /// The same tensors by "component.key" (checkpoint names).
    let flatParameters: [String: Tensor]
    /// EMA copies of the text encoder and UNet, by "component.key".
    let ema: [String: Tensor]
    let vaeOptimizer: AdamW, unetOptimizer: AdamW
    let vaeNames: [String], unetNames: [String]
    let schedule: NoiseSchedule
    /// The caption probe (trained only while `config.captionProbeWeight` > 0; never exported).
    let probe: CaptionProbe
    /// The training judge, for `config.judgeLossWeight` > 0.
    public private(set) var judge: AttributeClassifier?

    /// A fresh run (random initialisation) writing to `directory`.
    public init(directory: String, config: BaseTrainingConfig, tokenizerDirectory: String) throws {
        self.directory = directory
        self.tokenizerDirectory = tokenizerDirectory
        architecture = try config.resolvedArchitecture
        state = State(config: config)
        tokenizer = try CLIPTokenizer(directory: tokenizerDirectory)
        let a = architecture
        let vr = WeightReader(randomSeed: config.initSeed), tr = WeightReader(randomSeed: config.initSeed &+ 1)
        let ur = WeightReader(randomSeed: config.initSeed &+ 2)
        vae = try AutoencoderKL(config: a.vae, weights: vr)
        textEncoder = try CLIPTextModel(config: a.textEncoder, weights: tr)
        unet = try UNet2DConditionModel(config: a.unet, weights: ur)
        func named(_ r: WeightReader) -> [String: Tensor] { Dictionary(uniqueKeysWithValues: r.issued.map { ($0.key, $0.tensor) }) }
        parameters = ["vae": named(vr), "text_encoder": named(tr), "unet": named(ur)]
        for group in parameters.values { for t in group.values { t.requiresGrad = true } }
        vaeNames = parameters["vae"]!.keys.sorted().map { "vae." + $0 }
        unetNames = (parameters["text_encoder"]!.keys.map { "text_encoder." + $0 } + parameters["unet"]!.keys.map { "unet." + $0 }).sorted()
        let flat = BaseModelTrainer.flatten(parameters)
        flatParameters = flat
        vaeOptimizer = AdamW(parameters: vaeNames.map { flat[$0]! }, config: .init(learningRate: config.vaeLearningRate))
        unetOptimizer = AdamW(parameters: unetNames.map { flat[$0]! }, config: .init(learningRate: config.unetLearningRate))
        ema = Dictionary(uniqueKeysWithValues: unetNames.map { ($0, flat[$0]!.detached().clone()) })
        schedule = try NoiseSchedule(a.scheduler)
        probe = try CaptionProbe(width: a.textEncoder.hiddenSize, seed: config.initSeed &+ 3, learningRate: config.unetLearningRate)
    }

    /// Continues the run saved in `directory` from its latest checkpoint.
    public static func resume(directory: String, tokenizerDirectory: String) throws -> BaseModelTrainer {
        let ck = TrainingCheckpoint(directory: directory)
        let (state, weights, optimizer) = try ck.load(versioned: State.self)
        let t = try BaseModelTrainer(directory: directory, config: state.config, tokenizerDirectory: tokenizerDirectory)
        t.state = state
        try TrainingCheckpoint.restore(t.flatParameters, from: weights)
        try TrainingCheckpoint.restore(Dictionary(uniqueKeysWithValues: t.ema.map { ("ema." + $0.key, $0.value) }), from: weights)
        _ = try t.probe.restore(from: weights)   // runs from before the probe start it fresh
        if let optimizer, state.phase != .done {
            if state.phase == .vae { try TrainingCheckpoint.restore(t.vaeOptimizer, names: t.vaeNames, from: optimizer) }
            else { try TrainingCheckpoint.restore(t.unetOptimizer, names: t.unetNames, from: optimizer) }
        }
        return t
    }

    /// A new run that starts from an exported model folder (its VAE, text encoder and UNet,
    /// fp16 widened to fp32) at the UNet phase, step `step`: continuing troupe-mini when the
    /// fp32 run folder (weights + AdamW moments) is gone. The optimiser starts afresh, so the
    /// learning rate warms up again from `step`.
    public static func continuing(from folder: String, directory: String, config: BaseTrainingConfig, step: Int,
                                  tokenizerDirectory: String) throws -> BaseModelTrainer {
        let t = try BaseModelTrainer(directory: directory, config: config, tokenizerDirectory: tokenizerDirectory)
        let f = try DiffusersFolder(path: folder)
        let sources: [(String, [String])] = [("vae", try f.weightFiles("vae", baseName: "diffusion_pytorch_model")),
                                            ("text_encoder", try f.weightFiles("text_encoder", baseName: "model")),
                                            ("unet", try f.weightFiles("unet", baseName: "diffusion_pytorch_model"))]
        for (component, files) in sources {
            let reader = try WeightReader(paths: files)
            for (key, tensor) in t.parameters[component]! {
                tensor.assign(try reader.tensor(key, shape: tensor.shape))
                if let e = t.ema[component + "." + key] { e.assign(tensor) }
            }
        }
        t.state.scalingFactor = try f.config(VAEConfig.self, "vae").scalingFactor
        t.state.phase = .unet
        t.state.step = step
        t.state.config.unetWarmupFrom = step
        return t
    }

    static func flatten(_ p: [String: [String: Tensor]]) -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (component, group) in p { for (k, t) in group { out[component + "." + k] = t } }
        return out
    }

    /// Raises (or lowers) the UNet phase's total, for a resumed run continued in pieces.
    public func extend(unetSteps: Int) {
        state.config.unetSteps = unetSteps
        if state.phase == .done && state.step < unetSteps { state.phase = .unet }
    }

    /// Changes the UNet phase's training settings of a resumed run (losses, cooldown, checkpoint
    /// interval); the architecture, seeds and VAE settings are the run's and stay.
    public func reconfigureUNetPhase(_ change: (inout BaseTrainingConfig) -> Void) {
        var c = state.config
        change(&c)
        state.config.faceLossWeight = max(0, c.faceLossWeight)
        state.config.expressionContrastWeight = max(0, c.expressionContrastWeight)
        state.config.colorContrastWeight = max(0, c.colorContrastWeight)
        state.config.captionProbeWeight = max(0, c.captionProbeWeight)
        state.config.detailLossWeight = max(0, c.detailLossWeight)
        state.config.unetDecaySteps = max(0, c.unetDecaySteps)
        state.config.captionProbeFitUntil = c.captionProbeFitUntil
        state.config.captionProbeNamesContext = c.captionProbeNamesContext
        state.config.checkpointEvery = max(1, c.checkpointEvery)
    }

    /// Changes the VAE phase's length while the run is still in it (the cosine schedule
    /// follows the new length from the current step on).
    public func extend(vaeSteps: Int) -> Bool {
        guard state.phase == .vae, vaeSteps > state.step else { return false }
        state.config.vaeSteps = vaeSteps
        return true
    }

    /// Turns the x̂₀ attribute loss on (weight > 0) or off; a run whose config has it on needs
    /// the judge again after a resume.
    public func setJudgeLoss(weight: Float, judge: AttributeClassifier?) {
        state.config.judgeLossWeight = weight
        self.judge = judge
    }

    /// Replaces the VAE decoder with a tuned one (`troupe train-decoder`) from a model folder
    /// whose encoder is this run's: later checkpoints and exports carry it, and the x̂₀ loss
    /// decodes through it.
    public func replaceDecoder(from folder: String) throws {
        let vaeParameters = parameters["vae"]!
        let reader = try DecoderFineTuner.checkedReader(folder, sameEncoderAs: vaeParameters)
        for (key, t) in vaeParameters where DecoderFineTuner.isDecoder(key) { t.assign(try reader.tensor(key, shape: t.shape)) }
    }

    public var parameterCounts: [String: Int] { parameters.mapValues { $0.values.reduce(0) { $0 + $1.count } } }

    // MARK: Trainer (the shared TrainingLoop runs it: VAE phase, then UNet phase)

    public var phase: String { state.phase.rawValue }
    public var stepsDone: Int { state.step }
    public var totalSteps: Int {
        switch state.phase { case .vae: return state.config.vaeSteps; case .unet: return state.config.unetSteps; case .done: return state.step }
    }
    public var checkpointEvery: Int { state.config.checkpointEvery }
    /// The phase change and the end each write a checkpoint of their own.
    public var checkpointsAtPhaseEnd: Bool { false }
    private var clock: (start: Date, before: Double)?

    public func trainStep() throws -> (losses: [String: Float], learningRate: Float) {
        if clock == nil { clock = (Date(), state.seconds) }
        let out = state.phase == .vae ? vaeStep(state.step) : unetStep(state.step)
        state.step += 1
        return out
    }

    /// VAE → UNet: the latent scale is measured, the UNet phase starts at step 0.
    public func advancePhase() throws -> Bool {
        guard state.phase == .vae else { return false }
        state.scalingFactor = measureScalingFactor()
        state.phase = .unet; state.step = 0
        try saveCheckpoint()
        return true
    }

    public func finish() throws {
        guard state.phase != .done else { return }
        state.phase = .done
        try saveCheckpoint()
    }

    // MARK: steps

    func rng(_ step: Int, _ stream: UInt64) -> SplitMixRandom {
        SplitMixRandom(seed: state.config.initSeed &* 0x9E37_79B9 ^ UInt64(step) &* 0x1000_0001 ^ stream &* 0x5851_F42D ^ (state.phase == .vae ? 0 : 0xABCD))
    }

    /// The World streams of a run, offsets from its world seed: the VAE phase's, the UNet
    /// phase's (whose samples the losses re-caption), and the scaling-factor estimate's.
    static let vaeWorldOffset: UInt64 = 0, unetWorldOffset: UInt64 = 1, scalingWorldOffset: UInt64 = 99

    func world(_ offset: UInt64) -> World { World(seed: state.config.worldSeed &+ offset) }

    func batch(_ step: Int, size: Int, worldOffset: UInt64) -> ([WorldSample], Tensor) {
        let world = self.world(worldOffset)
        let samples = (0..<size).map { world.sample(step * size + $0) }
        return (samples, WorldBatch.images(world, samples))
    }

    func vaeStep(_ step: Int) -> ([String: Float], Float) {
        let cfg = state.config
        let (_, x) = batch(step, size: cfg.vaeBatch, worldOffset: Self.vaeWorldOffset)
        var r = rng(step, 1)
        let (mean, logVar) = vae.encode(x)
        let lv = logVar.clamped(-30, 20)
        let z = AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &r)
        let decoded = vae.decode(z)
        let recon = Tensor.mseLoss(decoded, x)
        // KL per latent element, averaged: ½(μ² + σ² − 1 − log σ²).
        let kl = ((mean.square() + lv.exp() - lv - 1) * 0.5).mean()
        var losses = ["recon": recon.item(), "kl": kl.item()]
        var fit = recon
        if cfg.vaeFaceWeight > 0 {
            let n = architecture.imageSize
            fit = ((decoded - x).square() * Self.faceWeights(height: n, width: n, weight: cfg.vaeFaceWeight, imageSize: n)).mean()
            losses["face_weighted"] = fit.item()
        }
        let loss = fit + kl * cfg.klWeight
        vaeOptimizer.zeroGrad()
        loss.backward()
        let norm = GradientClipping.clip(vaeOptimizer.parameters, maxNorm: cfg.maxGradNorm)
        let lr = cfg.vaeLearningRate * LearningRateSchedule.cosine(warmup: min(cfg.warmup, cfg.vaeSteps / 10), total: cfg.vaeSteps).factor(at: step)
        vaeOptimizer.step(learningRate: lr)
        losses["grad_norm"] = norm
        return (losses, lr)
    }

    func latents(_ x: Tensor, _ r: inout SplitMixRandom) -> Tensor {
        GradMode.noGrad {
            let (mean, logVar) = vae.encode(x)
            return AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &r) * state.scalingFactor
        }
    }

    func unetStep(_ step: Int) -> ([String: Float], Float) {
        let cfg = state.config
        let (samples, x) = batch(step, size: cfg.unetBatch, worldOffset: Self.unetWorldOffset)
        var r = rng(step, 2)
        let z0 = latents(x, &r)
        let b = z0.shape[0]
        let timesteps = (0..<b).map { _ in Int(r.next() % UInt64(schedule.alphasCumprod.count)) }
        let noise = Tensor.randn(z0.shape, using: &r)
        let xt = schedule.addNoise(z0, noise: noise, timesteps: timesteps)
        let ids = samples.map { tokenizer.encode($0.caption) }
        let context = textEncoder(ids)
        let eps = unet(xt, timesteps: timesteps.map(Float.init), context: context).sample
        let loss = Tensor.mseLoss(eps, noise)
        var losses = ["loss": loss.item()]
        var total = loss
        if cfg.faceLossWeight > 0 {
            total = Self.faceWeightedMSE(eps, noise, weight: cfg.faceLossWeight, imageSize: architecture.imageSize)
            losses["face_weighted"] = total.item()
        }
        if cfg.detailLossWeight > 0,
           let detail = Self.detailLoss(eps, noise, samples: samples, weight: cfg.detailLossWeight, imageSize: architecture.imageSize) {
            total = total + detail
            losses["detail"] = detail.item()
        }
        if cfg.expressionContrastWeight > 0,
           let ce = expressionContrastLoss(samples: samples, xt: xt, eps: eps, noise: noise, timesteps: timesteps) {
            total = total + ce * cfg.expressionContrastWeight
            losses["contrast"] = ce.item()
        }
        if cfg.colorContrastWeight > 0 {
            var pick = rng(step, 3)
            if let ce = colorContrastLoss(samples: samples, xt: xt, eps: eps, noise: noise, timesteps: timesteps, using: &pick) {
                total = total + ce * cfg.colorContrastWeight
                losses["color_contrast"] = ce.item()
            }
        }
        if cfg.judgeLossWeight > 0, let judge {
            let ce = attributeLoss(judge, samples: samples, xt: xt, eps: eps, timesteps: timesteps)
            if let ce { total = total + ce * cfg.judgeLossWeight; losses["judge"] = ce.item() }
        }
        if cfg.captionProbeWeight > 0 {
            let named = samples.map { CaptionProbe.labels($0, context: cfg.captionProbeNamesContext) }
            let read = step < cfg.captionProbeFitUntil ? context.detached() : context
            if let ce = probe.loss(context: read, ids: ids, named: named, endToken: tokenizer.eosID) {
                total = total + ce * cfg.captionProbeWeight; losses["probe"] = ce.item()
            }
        }
        // Every loss that is on adds to what is minimised; "loss" stays the plain ε-MSE so runs compare.
        losses["total"] = total.item()
        unetOptimizer.zeroGrad()
        probe.zeroGrad()
        total.backward()
        let norm = GradientClipping.clip(unetOptimizer.parameters, maxNorm: cfg.maxGradNorm)
        let lr = cfg.unetLearningRate * cfg.unetLearningRateFactor(at: step)
        unetOptimizer.step(learningRate: lr)
        if cfg.captionProbeWeight > 0 { probe.step(learningRate: lr) }
        updateEMA(step)
        losses["grad_norm"] = norm
        return (losses, lr)
    }

    /// ema ← d·ema + (1−d)·θ, with diffusers' EMAModel warm-up d = min(decay, (1+n)/(10+n)).
    func updateEMA(_ step: Int) {
        let d = min(state.config.emaDecay, Float(1 + step) / Float(10 + step))
        for (name, e) in ema {
            let p = flatParameters[name]!, ep = e.dataPointer, pp = p.dataPointer
            Parallel.forChunks(e.count, grain: 1 << 15) { range in
                for j in range { ep[j] = d * ep[j] + (1 - d) * pp[j] }
            }
        }
    }

    /// 1/std of posterior samples of 256 World images (LDM's rule for scaling_factor).
    func measureScalingFactor() -> Float {
        var r = rng(0, 3)
        var sum = 0.0, sumSq = 0.0, n = 0.0
        let saved = state.scalingFactor
        state.scalingFactor = 1
        defer { state.scalingFactor = saved }
        for k in 0..<8 {
            let (_, x) = batch(k, size: 32, worldOffset: Self.scalingWorldOffset)
            let z = latents(x, &r).contiguous()
            for i in 0..<z.count { let v = Double(z.dataPointer[i]); sum += v; sumSq += v * v; n += 1 }
        }
        let variance = sumSq / n - (sum / n) * (sum / n)
        return Float(1 / variance.squareRoot())
    }

    // MARK: checkpoints and export

    public func saveCheckpoint() throws {
        if let c = clock { state.seconds = c.before + Date().timeIntervalSince(c.start) }
        var tensors = flatParameters
        for (k, t) in ema { tensors["ema." + k] = t }
        for (k, t) in probe.checkpointTensors { tensors[k] = t }
        let name = "\(state.phase.rawValue)-\(String(format: "%06d", state.step))"
        let optimizer: AdamW? = state.phase == .vae ? vaeOptimizer : (state.phase == .unet ? unetOptimizer : nil)
        let names = state.phase == .vae ? vaeNames : unetNames
        try TrainingCheckpoint(directory: directory).save(name: name, tensors: tensors, optimizer: optimizer, optimizerNames: names, state: state)
        if state.phase != .vae { try export(to: directory + "/model") }
    }

    /// Writes the model (EMA text encoder and UNet) as a diffusers folder.
    public func export(to folder: String) throws {
        func emaGroup(_ c: String) -> [String: Tensor] {
            Dictionary(uniqueKeysWithValues: parameters[c]!.keys.map { ($0, ema[c + "." + $0]!) })
        }
        try DiffusersExport.write(to: folder, architecture: architecture, scalingFactor: state.scalingFactor,
                                  textEncoder: emaGroup("text_encoder"), unet: emaGroup("unet"), vae: parameters["vae"]!,
                                  tokenizerDirectory: tokenizerDirectory)
    }
}
