// `troupe train-decoder`: fine-tunes a model's VAE decoder with its encoder frozen.
// The encoder defines the latent space the UNet was trained in; leaving it untouched keeps
// every UNet trained on it valid, so a sharper decoder can be attached to a model at any time
// (and re-attached to later exports of the same run). Loss, on World renders x:
//   z = μ + σ·ε from the frozen E(x) (the decoder sees posterior samples, as generations are
//   never exactly μ), x̂ = D(z),
//   L = mean √((x̂ − x)² + 10⁻⁶)                          (Charbonnier ≈ L1: crisp flat shading)
//     + w · Σ_l mean((φ_l(x̂) − φ_l(x))²) / mean(φ_l(x)²)   (perceptual, LPIPS-style)
//     + λ · mean over D of √((x̂ − x)² + 10⁻⁶)              (detail, optional)
// where φ_l are the feature maps of the *training* World judge (models/judges/attributes-train;
// the evaluation judge is never used in training). L2 alone averages small features (eyes,
// mouths, patterns) into blur; the perceptual term weighs what distinguishes them. D is the
// pixels of each render's accessory and eyes (World.detailPixels: 2-pixel eyes, 2.6-pixel
// earrings), which the first two terms weigh by their area; at λ = 1 they weigh as much as the
// whole rest of the image.
// Every sample and noise draw is a function of (seed, step), so a resumed run repeats exactly.

import Foundation

public struct DecoderTuningConfig: Codable, Sendable, Equatable {
    /// The diffusers folder whose VAE is tuned (and whose other components the export carries).
    public var model: String
    public var worldSeed: UInt64 = 7
    public var seed: UInt64 = 11
    public var steps = 3000
    public var batch = 16
    public var learningRate: Float = 2e-4
    public var warmup = 100
    public var perceptualWeight: Float = 0.2
    /// λ of the detail term (0: off).
    public var detailWeight: Float = 0
    public var checkpointEvery = 250
    public init(model: String) { self.model = model }

    // Run folders written before a field existed still resume: absent keys keep the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DecoderTuningConfig(model: "")
        model = try c.decode(String.self, forKey: .model)
        worldSeed = try c.decode(.worldSeed, or: d.worldSeed); seed = try c.decode(.seed, or: d.seed)
        steps = try c.decode(.steps, or: d.steps); batch = try c.decode(.batch, or: d.batch)
        learningRate = try c.decode(.learningRate, or: d.learningRate); warmup = try c.decode(.warmup, or: d.warmup)
        perceptualWeight = try c.decode(.perceptualWeight, or: d.perceptualWeight)
        detailWeight = try c.decode(.detailWeight, or: d.detailWeight)
        checkpointEvery = try c.decode(.checkpointEvery, or: d.checkpointEvery)
    }
}

public enum DecoderTuningError: Error, CustomStringConvertible {
    case encoderDiffers(String, key: String)
    public var description: String {
        switch self {
        case let .encoderDiffers(folder, key):
            return "\(folder): its VAE encoder differs from the tuned run's ('\(key)'), so its UNet works in another latent space; a tuned decoder can only be attached to a model with the same encoder"
        }
    }
}

public final class DecoderFineTuner: Trainer {
    public struct State: Codable, Sendable, VersionedTrainingState {
        public var version = 1
        public var config: DecoderTuningConfig
        public var step = 0
        public var seconds: Double = 0
    }


    public let directory: String
    public private(set) var state: State
    let vae: AutoencoderKL
    let judge: AttributeClassifier
    /// Every VAE tensor by its diffusers key.
    let parameters: [String: Tensor]
    let decoderNames: [String]
    let optimizer: AdamW

    /// A new run tuning the decoder of `config.model`, writing to `directory`.
    public init(directory: String, config: DecoderTuningConfig, judge: AttributeClassifier) throws {
        self.directory = directory
        self.judge = judge
        state = State(config: config)
        let folder = try DiffusersFolder(path: config.model)
        let vaeConfig = try folder.config(VAEConfig.self, "vae")
        let reader = WeightReader(randomSeed: config.seed)
        vae = try AutoencoderKL(config: vaeConfig, weights: reader)
        let all = Dictionary(uniqueKeysWithValues: reader.issued.map { ($0.key, $0.tensor) })
        try DecoderFineTuner.load(all, from: folder)
        let names = all.keys.filter(DecoderFineTuner.isDecoder).sorted()
        let trainable = names.map { all[$0]! }
        for t in trainable { t.requiresGrad = true }
        parameters = all
        decoderNames = names
        optimizer = AdamW(parameters: trainable, config: .init(learningRate: config.learningRate, weightDecay: 0))
    }

    static func isDecoder(_ key: String) -> Bool { key.hasPrefix("decoder.") || key.hasPrefix("post_quant_conv.") }

    static func load(_ parameters: [String: Tensor], from folder: DiffusersFolder) throws {
        let reader = try WeightReader(paths: try folder.weightFiles("vae", baseName: "diffusion_pytorch_model"))
        for (key, t) in parameters { t.assign(try reader.tensor(key, shape: t.shape)) }
    }

    /// Continues the run in `directory`; `model`, if given, replaces the folder the export
    /// carries (a later export of the same base run: its encoder must be the tuned one's).
    public static func resume(directory: String, judge: AttributeClassifier, model: String? = nil) throws -> DecoderFineTuner {
        let ck = TrainingCheckpoint(directory: directory)
        let (state, weights, moments) = try ck.load(versioned: State.self)
        let t = try DecoderFineTuner(directory: directory, config: state.config, judge: judge)
        t.state = state
        try TrainingCheckpoint.restore(t.parameters, from: weights)
        if let moments { try TrainingCheckpoint.restore(t.optimizer, names: t.decoderNames, from: moments) }
        if let model { try t.attach(to: model) }
        return t
    }

    /// Makes `model` the folder the export carries, after checking its encoder is this run's.
    func attach(to model: String) throws {
        _ = try DecoderFineTuner.checkedReader(model, sameEncoderAs: parameters)
        state.config.model = model
    }

    /// The VAE weights of `model`, once its encoder (every non-decoder tensor) is found equal
    /// to `mine`'s. Both sides were stored as fp16 from the same fp32 run: compared at that precision.
    static func checkedReader(_ model: String, sameEncoderAs mine: [String: Tensor]) throws -> WeightReader {
        let folder = try DiffusersFolder(path: model)
        let reader = try WeightReader(paths: try folder.weightFiles("vae", baseName: "diffusion_pytorch_model"))
        for (key, t) in mine where !isDecoder(key) {
            let other = try reader.tensor(key, shape: t.shape).contiguous(), own = t.contiguous()
            for i in 0..<own.count where Float(Float16(own.dataPointer[i])) != Float(Float16(other.dataPointer[i])) {
                throw DecoderTuningError.encoderDiffers(model, key: key)
            }
        }
        return reader
    }

    public func extend(steps: Int) { state.config.steps = steps }
    public func setCheckpointEvery(_ n: Int) { state.config.checkpointEvery = max(1, n) }
    public var decoderParameterCount: Int { decoderNames.reduce(0) { $0 + parameters[$1]!.count } }

    // MARK: Trainer (the shared TrainingLoop runs it)

    public var phase: String { "decoder" }
    public var stepsDone: Int { state.step }
    public var totalSteps: Int { state.config.steps }
    public var checkpointEvery: Int { state.config.checkpointEvery }
    private var clock: (start: Date, before: Double)?

    public func trainStep() throws -> (losses: [String: Float], learningRate: Float) {
        if clock == nil { clock = (Date(), state.seconds) }
        let out = step(state.step)
        state.step += 1
        return out
    }

    /// A finished run resumed with `--model NEWER` still writes its export.
    public func finish() throws {
        if clock == nil { try export(to: directory + "/model") }
    }

    func step(_ step: Int) -> ([String: Float], Float) {
        let cfg = state.config
        // World stream 3: neither the VAE phase's (0) nor the UNet phase's (1) samples.
        let world = World(seed: cfg.worldSeed &+ 3)
        let samples = (0..<cfg.batch).map { world.sample(step * cfg.batch + $0) }
        let x = WorldBatch.images(world, samples)
        var r = SplitMixRandom(seed: cfg.seed &* 0x9E37_79B9 ^ UInt64(step) &* 0x1000_0001)
        let z = GradMode.noGrad {
            let (mean, logVar) = vae.encode(x)
            return AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &r)
        }
        let recon = vae.decode(z)
        let diff = recon - x
        let charbonnier = (diff.square() + 1e-6).sqrt()
        let pixel = charbonnier.mean()
        var loss = pixel
        var losses: [String: Float] = [:]
        if cfg.detailWeight > 0 {
            let size = x.shape[2]
            let mask = samples.flatMap { BaseModelTrainer.detailMask(World.detailPixels($0), height: size, width: size, imageSize: size) }
            let count = mask.reduce(0, +)
            if count > 0 {
                // mean over [B, 3, H, W] × B·H·W / |D| = the mean over D's pixels and channels.
                let detail = (charbonnier * Tensor(mask, shape: [samples.count, 1, size, size])).mean() * (Float(mask.count) / count)
                loss = loss + detail * cfg.detailWeight
                losses["detail"] = detail.item()
            }
        }
        var perceptual = Tensor(scalar: 0)
        if cfg.perceptualWeight > 0 {
            let targets = GradMode.noGrad { judge.features(x) }
            for (f, target) in zip(judge.features(recon), targets) {
                let scale = max(target.square().mean().item(), 1e-6)
                perceptual = perceptual + Tensor.mseLoss(f, target) * (1 / scale)
            }
            loss = loss + perceptual * cfg.perceptualWeight
        }
        optimizer.zeroGrad()
        loss.backward()
        let norm = GradientClipping.clip(optimizer.parameters, maxNorm: 1)
        let lr = cfg.learningRate * LearningRateSchedule.cosine(warmup: min(cfg.warmup, cfg.steps / 10), total: cfg.steps).factor(at: step)
        optimizer.step(learningRate: lr)
        let mse = GradMode.noGrad { diff.square().mean().item() }
        losses.merge(["pixel": pixel.item(), "perceptual": perceptual.item(), "mse": mse, "grad_norm": norm]) { a, _ in a }
        return (losses, lr)
    }

    public func saveCheckpoint() throws {
        if let c = clock { state.seconds = c.before + Date().timeIntervalSince(c.start) }
        try TrainingCheckpoint(directory: directory).save(name: String(format: "decoder-%06d", state.step), tensors: parameters,
                                                          optimizer: optimizer, optimizerNames: decoderNames, state: state)
        try export(to: directory + "/model")
    }

    /// Writes `config.model` with this run's VAE in place of its own (fp16), as a diffusers folder.
    public func export(to folder: String) throws {
        let source = state.config.model
        let fm = FileManager.default
        let weights = "vae/diffusion_pytorch_model.safetensors"
        guard let files = fm.enumerator(atPath: source)?.allObjects as? [String] else {
            throw WeightsError.missingComponent(path: source, what: "model folder")
        }
        for f in files.sorted() {
            var isDir: ObjCBool = false
            // The source's model card would describe another VAE: not carried.
            if !fm.fileExists(atPath: source + "/" + f, isDirectory: &isDir) || isDir.boolValue || f.hasPrefix(".") || f.hasPrefix("vae/diffusion_pytorch_model") || f == "README.md" { continue }
            guard let d = fm.contents(atPath: source + "/" + f) else { throw WeightsError.missingComponent(path: source + "/" + f, what: "model file") }
            try fm.createDirectory(atPath: ((folder + "/" + f) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try AtomicFile.write(d, to: folder + "/" + f)
        }
        try SafetensorsWriter.write(parameters, to: folder + "/" + weights, dtype: .f16, metadata: ["format": "pt"])
    }
}
