// Trains the identity adapter once, generically, on the World (design §4; IP-Adapter's training,
// arXiv 2308.06721 §3.3, with the IdentityEncoder in place of CLIP's image encoder). Only the
// adapter learns (the image projection and each cross-attention layer's W_k', W_v'); the UNet,
// text encoder, VAE and IdentityEncoder stay frozen. One step, B World samples:
//   reference  the sample's identity in another random scene (pose, expression, background,
//              view), rendered and passed through the VAE (posterior mean, decode) — what a
//              generated reference looks like — then e = IdentityEncoder(reference)
//   target     the sample itself: z₀ = scaling·(μ + σ·ε₁) of its render, its World caption
//   drops      as IP-Adapter: with probability p each the identity (e → 0, the neutral tokens
//              the unconditional branch gets at sampling), the caption (→ ""), or both
//   L          ‖f̂(x_t, t, CLIP(caption), tokens(e)) − y‖², y the model's training target
// Because the reference is another scene of the same character, the adapter can only carry
// who the character is, not where or how it stands (IP-Adapter trains on the image itself,
// which teaches it to copy the layout). Troupe's addition: the ε loss barely depends on who the
// character is (the sprite's identity is a few percent of its pixels), and in a 5000-step run the
// ε-only adapter moved identity little (measured), so the rows with the identity kept and
// t < judgeMaxTimestep also get the training judge's cross-entropy on the decoded x̂₀ against
// the identity's seven attributes (the evaluation judge never is a loss):
//   L += λ·mean_a CE(judge_a(D(x̂₀)), label_a(identity))
// AdamW, warm-up then constant, optionally cooled to 0 over the last `decaySteps` (warmup–
// stable–decay, so a constant-rate run can be branched and cooled at any checkpoint); every
// draw a function of (seed, step), so a resumed run repeats what an uninterrupted one does.

import Foundation

public struct IdentityAdapterConfig: Codable, Sendable, Equatable {
    public var steps = 3000
    public var batch = 16
    public var learningRate: Float = 3e-4
    public var weightDecay: Float = 0.01
    public var warmup = 100
    /// Steps at the end of the run over which the rate cools to 0 (0: constant to the end).
    public var decaySteps = 0
    public var dropIdentity: Float = 0.05
    public var dropCaption: Float = 0.05
    public var dropBoth: Float = 0.05
    public var maxGradNorm: Float = 1
    /// Weight of the training judge's identity-attribute term (0: IP-Adapter's ε loss alone),
    /// the timesteps below which rows take part, and at most how many rows a step. Every
    /// timestep: the high-noise rows are where coarse shapes (hair style, accessories) are
    /// decided — a branch with the term at all timesteps reached 0.602 built-in identity
    /// consistency 1 500 steps after step 8 000, where the t < 500 run reached 0.542 after 2 500.
    public var judgeWeight: Float = 0.01
    public var judgeMaxTimestep = 1000
    public var judgeRows = 8
    /// Weight of the training judge's cross-entropy on the same rows' context attributes (pose,
    /// expression, background, view: the target's, which its caption says and the reference,
    /// drawn in an independent scene, does not): the adapter should carry who, never how or
    /// where. Spatial tokens copy the reference's emote (measured: expression followed 0.38
    /// held out after 1 500 steps without this term, 0.73 with it); 0: off.
    public var contextWeight: Float = 0.02
    public var checkpointEvery = 250
    /// Spatial tokens too (IdentityAdapter's second branch, the encoder's 8×8 map): the
    /// pooled vector's four tokens carry colours best and shapes (hair style, accessories,
    /// eyes) least; the shipped troupe-mini adapter is spatial.
    public var spatial = true
    public var worldSeed: UInt64 = 4004
    public var seed: UInt64 = 4
    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = IdentityAdapterConfig()
        steps = try c.decode(.steps, or: d.steps); batch = try c.decode(.batch, or: d.batch)
        learningRate = try c.decode(.learningRate, or: d.learningRate); weightDecay = try c.decode(.weightDecay, or: d.weightDecay)
        warmup = try c.decode(.warmup, or: d.warmup); decaySteps = try c.decode(.decaySteps, or: d.decaySteps); dropIdentity = try c.decode(.dropIdentity, or: d.dropIdentity)
        dropCaption = try c.decode(.dropCaption, or: d.dropCaption); dropBoth = try c.decode(.dropBoth, or: d.dropBoth)
        maxGradNorm = try c.decode(.maxGradNorm, or: d.maxGradNorm); judgeWeight = try c.decode(.judgeWeight, or: d.judgeWeight)
        judgeMaxTimestep = try c.decode(.judgeMaxTimestep, or: d.judgeMaxTimestep); judgeRows = try c.decode(.judgeRows, or: d.judgeRows)
        // A run recorded before these settings existed had neither.
        contextWeight = try c.decode(.contextWeight, or: 0)
        checkpointEvery = try c.decode(.checkpointEvery, or: d.checkpointEvery); spatial = try c.decode(.spatial, or: false)
        worldSeed = try c.decode(.worldSeed, or: d.worldSeed); seed = try c.decode(.seed, or: d.seed)
    }

    /// Refuses settings out of range (one check for new runs, resumed ones and the command line,
    /// named by the options that set them).
    public func validate() throws {
        guard steps >= 1, batch >= 1, checkpointEvery >= 1, judgeMaxTimestep >= 1, decaySteps >= 0, decaySteps <= steps,
              learningRate.isFinite, learningRate > 0, judgeWeight.isFinite, judgeWeight >= 0, contextWeight.isFinite, contextWeight >= 0,
              [dropIdentity, dropCaption, dropBoth].allSatisfy({ $0 >= 0 && $0 <= 1 }), dropIdentity + dropCaption + dropBoth <= 1 else {
            throw GenerationError.badValue("identity adapter settings out of range: --steps, --batch, --checkpoint-every and --judge-max-timestep must be ≥ 1, --learning-rate a positive number, --judge-weight and --context-weight ≥ 0 and --decay-steps between 0 and the steps (\(steps)); drop rates in 0…1 summing to at most 1")
        }
    }

    /// The learning-rate multiplier by step.
    public var learningRateSchedule: LearningRateSchedule {
        let w = min(warmup, steps / 5)
        return decaySteps > 0 ? .warmupStableDecay(warmup: w, decayStart: steps - decaySteps, total: steps) : .constantWithWarmup(warmup: w)
    }
}

public final class IdentityAdapterTrainer: Trainer {
    public struct State: Codable, Sendable, VersionedTrainingState {
        public var version = 1
        public var config: IdentityAdapterConfig
        public var step = 0
    }

    public let pipeline: StableDiffusionPipeline
    public let encoder: IdentityEncoder
    /// The training judge of the identity-attribute term (nil when its weight is 0).
    public let judge: AttributeClassifier?
    public let adapter: IdentityAdapter
    public let directory: String
    public private(set) var state: State
    let names: [String]
    let optimizer: AdamW
    let schedule: NoiseSchedule

    public var phase: String { "identity-adapter" }
    public var stepsDone: Int { state.step }
    public var totalSteps: Int { state.config.steps }
    public var checkpointEvery: Int { state.config.checkpointEvery }

    public init(pipeline: StableDiffusionPipeline, encoder: IdentityEncoder, judge: AttributeClassifier? = nil,
                config: IdentityAdapterConfig, directory: String) throws {
        guard (config.judgeWeight == 0 && config.contextWeight == 0) || judge != nil else {
            throw GenerationError.badValue("the identity- and context-attribute terms need the training judge")
        }
        try config.validate()
        guard pipeline.vae.config.sampleSize == World.imageSize else {
            throw GenerationError.badValue("the identity adapter trains on the World's \(World.imageSize)×\(World.imageSize) sprites; this model's VAE works at \(pipeline.vae.config.sampleSize)")
        }
        self.pipeline = pipeline; self.encoder = encoder; self.directory = directory
        self.judge = config.judgeWeight > 0 || config.contextWeight > 0 ? judge : nil
        state = State(config: config)
        schedule = try NoiseSchedule(pipeline.schedulerConfig)
        let a = IdentityAdapter.initial(for: pipeline.unet, embedDim: IdentityEncoder.dimension,
                                        spatial: config.spatial ? (IdentityEncoder.spatialChannels, IdentityEncoder.spatialPositions) : nil,
                                        seed: config.seed)
        let sorted = a.parameters.keys.sorted()
        for n in sorted { a.parameters[n]!.requiresGrad = true }
        adapter = a; names = sorted
        optimizer = AdamW(parameters: sorted.map { a.parameters[$0]! },
                          config: .init(learningRate: config.learningRate, weightDecay: config.weightDecay))
    }

    /// Starts a new run from another adapter's weights instead of IdentityAdapter.initial: the
    /// adapter of an earlier checkpoint of the same base model, re-fitted after the base model
    /// trained on (its UNet changed under the adapter's key/value projections), or a pooled-only
    /// adapter grown a spatial branch (which starts as a no-op, so the run starts where that
    /// adapter is). Before any step.
    public func start(from other: IdentityAdapter) throws {
        guard state.step == 0 else { throw GenerationError.badValue("an adapter run starts from another adapter only before its first step") }
        guard !other.isSpatial || (adapter.isSpatial && other.inputWidth == adapter.inputWidth) else {
            throw GenerationError.badValue("the adapter to start from reads \(other.inputWidth)-wide identity features, this run \(adapter.inputWidth): it is for another architecture")
        }
        for n in names where other.isSpatial || !IdentityAdapter.isSpatialKey(n) {
            guard let t = other.parameters[n], t.shape == adapter.parameters[n]!.shape else {
                throw GenerationError.badValue("the adapter to start from has no '\(n)' of shape \(adapter.parameters[n]!.shape): it is for another architecture")
            }
            adapter.parameters[n]!.assign(t)
        }
    }

    /// Continues the run in `directory` from its latest checkpoint.
    public static func resume(pipeline: StableDiffusionPipeline, encoder: IdentityEncoder, judge: AttributeClassifier? = nil,
                              directory: String) throws -> IdentityAdapterTrainer {
        let (state, weights, optimizer) = try TrainingCheckpoint(directory: directory).load(versioned: State.self)
        let t = try IdentityAdapterTrainer(pipeline: pipeline, encoder: encoder, judge: judge, config: state.config, directory: directory)
        t.state = state
        try TrainingCheckpoint.restore(t.adapter.parameters, from: weights)
        if let optimizer { try TrainingCheckpoint.restore(t.optimizer, names: t.names, from: optimizer) }
        return t
    }

    /// Raises (or lowers, not below the steps done) the run's total.
    public func extend(steps: Int) { state.config.steps = max(state.step, steps) }

    /// What a resumed run may change: how often it checkpoints, a cooldown over its last steps
    /// (which must fit in the run), and the timesteps the judge term reaches (a branch: the
    /// steps after the change differ from the run's own), and the context term's weight (a
    /// branch too; it needs the judge the run was started with).
    public func reconfigure(checkpointEvery: Int?, decaySteps: Int?, judgeMaxTimestep: Int? = nil, contextWeight: Float? = nil) throws {
        var c = state.config
        if let contextWeight {
            guard contextWeight == 0 || judge != nil else { throw GenerationError.badValue("the context-attribute term needs the training judge, and this run has none") }
            c.contextWeight = contextWeight
        }
        if let checkpointEvery { c.checkpointEvery = checkpointEvery }
        if let decaySteps { c.decaySteps = decaySteps }
        if let judgeMaxTimestep { c.judgeMaxTimestep = judgeMaxTimestep }
        try c.validate()
        state.config = c
    }

    public func trainStep() throws -> (losses: [String: Float], learningRate: Float) {
        let c = state.config
        let (loss, eps, attributes) = batchLoss(state.step)
        optimizer.zeroGrad()
        loss.backward()
        let norm = GradientClipping.clip(optimizer.parameters, maxNorm: c.maxGradNorm)
        let lr = c.learningRate * c.learningRateSchedule.factor(at: state.step)
        optimizer.step(learningRate: lr)
        state.step += 1
        var terms = ["loss": loss.item(), "eps": eps.item(), "grad_norm": norm]
        if let attributes { terms["judge"] = attributes.identity.item(); if let c = attributes.context { terms["context"] = c.item() } }
        return (terms, lr)
    }

    /// The loss of step `k`'s batch with the adapter as it is now (the same draws as that step).
    public func loss(atStep k: Int) -> Float { GradMode.noGrad { batchLoss(k).total.item() } }

    /// Step `k`'s loss: the total, the ε (prediction) term and the judge's identity and context
    /// terms (nil without rows; context nil when its weight is 0).
    func batchLoss(_ k: Int) -> (total: Tensor, eps: Tensor, judge: (identity: Tensor, context: Tensor?)?) {
        let c = state.config
        var r = SplitMixRandom(seed: c.seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(k) &* 0xD1B5_4A32_D192_ED03)
        let world = World(seed: c.worldSeed)
        let samples = (0..<c.batch).map { world.sample(k * c.batch + $0) }
        let referenceScenes = samples.map { _ in World.randomScene(&r) }
        let vae = pipeline.vae
        var kept = [Bool](repeating: true, count: c.batch)
        let (z0, embeddings, contexts) = GradMode.noGrad { () -> (Tensor, Tensor, Tensor) in
            let targets = WorldBatch.tensor(rgb8: samples.map { world.image($0) }, size: World.imageSize)
            let (mean, logVar) = vae.encode(targets)
            let z0 = AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &r) * vae.config.scalingFactor
            let refs = WorldBatch.tensor(rgb8: zip(samples, referenceScenes).map { World.render($0.identity, $1) }, size: World.imageSize)
            let roundTrip = vae.decode(vae.encode(refs).mean).clamped(-1, 1)
            var e = encoder.adapterFeatures(roundTrip, spatial: adapter.isSpatial).toArray()
            var captions = samples.map(\.caption)
            let d = adapter.inputWidth
            for b in 0..<c.batch {
                let u = r.nextFloat()
                let dropID = u < c.dropIdentity || (u >= c.dropIdentity + c.dropCaption && u < c.dropIdentity + c.dropCaption + c.dropBoth)
                let dropText = u >= c.dropIdentity && u < c.dropIdentity + c.dropCaption + c.dropBoth
                if dropID { for i in 0..<d { e[b * d + i] = 0 }; kept[b] = false }
                if dropText { captions[b] = "" }
            }
            let ids = captions.map { pipeline.tokenizer.encode($0) }
            return (z0, Tensor(e, shape: [c.batch, d]), pipeline.textEncoder(ids))
        }
        let timesteps = (0..<c.batch).map { _ in Int(r.next() % UInt64(schedule.alphasCumprod.count)) }
        let noise = Tensor.randn(z0.shape, using: &r)
        let xt = schedule.addNoise(z0, noise: noise, timesteps: timesteps)
        let ext = adapter.attention(tokens: adapter.tokenSet(embeddings), scale: 1)
        let out = pipeline.unet(xt, timesteps: timesteps.map(Float.init), context: contexts, extension: ext).sample
        let eps = Tensor.mseLoss(out, schedule.trainingTarget(x0: z0, noise: noise, timesteps: timesteps))
        let rows = Array((0..<c.batch).filter { kept[$0] && timesteps[$0] < c.judgeMaxTimestep }.prefix(c.judgeRows))
        guard let judge, !rows.isEmpty else { return (eps, eps, nil) }
        let x0 = schedule.predictedOriginal(out.selectingRows(rows), xt: xt.selectingRows(rows).detached(), timesteps: rows.map { timesteps[$0] })
        let logits = judge(vae.decode(x0 * (1 / vae.config.scalingFactor)))
        let rowSamples = rows.map { samples[$0] }
        let ce = AttributeClassifier.meanCrossEntropy(logits: logits, samples: rowSamples, attributes: WorldAttribute.identity)
        guard c.contextWeight > 0 else { return (eps + ce * c.judgeWeight, eps, (ce, nil)) }
        let context = AttributeClassifier.meanCrossEntropy(logits: logits, samples: rowSamples, attributes: WorldAttribute.context)
        return (eps + ce * c.judgeWeight + context * c.contextWeight, eps, (ce, context))
    }

    public func saveCheckpoint() throws {
        try TrainingCheckpoint(directory: directory).save(name: String(format: "step-%06d", state.step), tensors: adapter.parameters,
                                                         optimizer: optimizer, optimizerNames: names, state: state)
    }

    /// The result: the adapter with the model and encoder it belongs to.
    public func saveAdapter(to path: String, extra: [String: String] = [:]) throws {
        var m = extra
        m["model"] = pipeline.fingerprint; m["steps"] = String(state.step); m["batch"] = String(state.config.batch)
        m["world_seed"] = String(state.config.worldSeed); m["learning_rate"] = String(state.config.learningRate)
        m["judge_weight"] = String(state.config.judgeWeight); m["decay_steps"] = String(state.config.decaySteps)
        m["judge_max_timestep"] = String(state.config.judgeMaxTimestep); m["spatial"] = String(state.config.spatial)
        m["context_weight"] = String(state.config.contextWeight)
        try adapter.save(to: path, metadata: m)
    }
}
