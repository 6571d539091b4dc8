// Stage 1 of the multi-stage fine-tune (design §4): appearance. LoRA adapters (rank r, PEFT
// initialisation: A uniform ±1/√in, B = 0, so training starts from the base model) on every
// UNet attention projection (attn1/attn2 to_q, to_k, to_v, to_out.0); the UNet, VAE and text
// encoder stay frozen. Loss: the diffusion MSE on the character's accepted references,
//   z₀ = scaling·(μ + σ·ε₁) of a reference (or, with `flip`, its mirror image), t ~ U{0…T−1},
//   L = ‖f̂(√ᾱ_t z₀ + √(1−ᾱ_t) ε, t, CLIP(prompt)) − y‖², y = ε, v or z₀ by the model's
//   prediction type (NoiseSchedule.trainingTarget; written ε below for the common case; with
//   `snrGamma` > 0 each row's MSE is weighed by Min-SNR-γ, NoiseSchedule.minSNRWeights),
// plus, for the batch rows at low noise (t < reconstructionMaxTimestep), a reconstruction term
// on the decoded prediction of the clean image (design §4 stage 1):
//   x̂₀ = NoiseSchedule.predictedOriginal(f̂, x_t),  L_rec = mean √((D(x̂₀/scaling) − x)² + 10⁻⁶)   (Charbonnier ≈ L1)
// with gradients through the frozen decoder into ε̂; L = L_ε + λ·L_rec. ε-MSE weighs every
// latent cell alike; the decoded term asks for the reference's pixels where the noise is low
// enough for x̂₀ to be an image. AdamW with linear warm-up + cosine decay. Every draw is a
// function of (seed, step), so a resumed run repeats exactly the steps an uninterrupted run
// would take. Crops and colour jitter of the references (ImageAugmentation) are off unless
// asked: on World models they change the size and colours that are the character's identity.
//
// Stage 2 (detail and style, `stage = 2`) continues the stage-1 adapters with two more terms:
//   identity: L_id = mean(1 − ⟨E(D(x̂₀)), E(x)⟩) over the rows with t < identityMaxTimestep
//     (every row by default), E the IdentityEncoder
//     (unit vectors), so the decoded prediction must read as the same character, not only as
//     the same pixels;
//   prior preservation (DreamBooth, Ruiz et al. 2023, eq. 2): each step one class image — the
//     base model's own generation of the class prompt ("a knight"), made before tuning — is
//     noised and denoised under the class prompt, L_prior = ‖ε̂ − ε‖², so the class word keeps
//     meaning any knight and not only this one.
//   L = L_ε + λ_rec·L_rec + λ_id·L_id + λ_prior·L_prior.
//
// Stage 3 (pose and expression, `stage = 3`) continues stage 2 and adds, each step, `poseRows`
// rows that ask for a random pose and expression: a reference's latents noised to a high
// timestep (t ∈ [500, 900): the layout is not yet fixed), the prompt plus "<pose>, <expression>",
// and the training judge's cross-entropy for that pose and expression on D(x̂₀):
//   L_pe = CE(J_pose(D(x̂₀)), pose) + CE(J_expression(D(x̂₀)), expression), weight λ_pe,
// so the tuned character keeps following pose and expression words instead of repeating its
// references' poses; with stage 2's identity term on, those rows also get it (reported as
// identity_pose), so the character stays itself under other context words. With
// `poseRowsNameView` the rows also name a random view and the judge's view term joins L_pe. Only the training
// judge (attributes-train) is a loss here.
//
// With `convRank` > 0 (4 by default) every stage also trains LoCon adapters (LyCORIS: a k×k
// down convolution to `convRank` channels, a 1×1 up convolution back, B = 0 at the start) on the
// ResNet blocks' convolutions, the layers that draw at full resolution; keyed like the attention
// adapters (`unet.<path>.lora_A/B.weight`, 4-D), continued by the later stages.
//
// With `feedForwardRank` > 0 every stage also trains LoRA adapters on the transformer blocks'
// feed-forward layers (off by default), keyed `unet.<path>` like the attention ones.
//
// With `textEncoderRank` > 0 any stage also trains LoRA adapters (that rank) on the text
// encoder's self-attention and MLP projections (kohya's default targets, diffusers'
// `--train_text_encoder`), keyed `text_encoder.<path>` in the file; its prompts are then encoded
// through them every step (TuningPrompts). A later stage continues them.
//
// With `summaryOffsetLearningRateScale` K > 0 (pivotal tuning; off by default) every stage also
// learns one text offset δ [1, d], from zero, at K times the adapters' learning rate (AdamW
// parameter groups), added to the frozen text encoder's output at the base word and the
// prompt's end and padding tokens of every character row (main and pose rows; never the class
// rows): SummaryOffset, continued by the later stages and written with the LoRA.
//
// With `identityAdapterScale` ≠ 0, any stage trains with the identity embedding fed to the UNet
// (TuningIdentity): the main and pose rows read another accepted reference's identity tokens
// at that scale; prior preservation's class rows read none (the LoRA alone must leave the class
// word alone). Such a LoRA is meant to be sampled with the adapter reading a reference, as
// `eval --methods stages+identity` does; `tune` does not train this way (on troupe-mini it traded
// consistency for fidelity, docs/stages.md).

import Foundation

public struct AppearanceTuningConfig: Codable, Sendable, Equatable {
    /// Mirror-image augmentation: only for models trained on mirrored data. A mirrored World
    /// sprite moves its emote balloon out of its corner, and troupe-mini's ε-MSE on flipped
    /// images is about 10× that on the originals (measured), so it is off by default.
    public var flip = false
    /// Crops and colour jitter of the references (off by default; see ImageAugmentation).
    public var augmentation = ImageAugmentation()
    public var steps = 200
    public var rank = 4
    public var learningRate: Float = 1e-4
    public var batch = 2
    public var warmup = 10
    public var checkpointEvery = 25
    public var seed: UInt64 = 1
    /// λ of the decoded-x̂₀ reconstruction term (0: off).
    public var reconstructionWeight: Float = 0.1
    /// Rows with t below this get the reconstruction term.
    public var reconstructionMaxTimestep = 250
    /// 1: appearance; 2: detail/style (identity and prior-preservation terms).
    public var stage = 1
    /// λ of the identity term (stage 2; needs an IdentityEncoder) and the timesteps below which
    /// rows get it: every one by default, since coarse shapes (hair style, accessories) are
    /// decided at high noise — where the reconstruction term, a pixel match, would only blur.
    public var identityWeight: Float = 0
    public var identityMaxTimestep = 1000
    /// λ of the prior-preservation term (stage 2; needs class images).
    public var priorWeight: Float = 0
    /// λ of the pose/expression term (stage 3; needs the training judge) and its rows a step.
    public var poseWeight: Float = 0
    public var poseRows = 2
    /// Whether stage 3's rows also name a random view and the judge's view head joins the term
    /// (PoseExpressionTerm's `namesView`; off: pose and expression only, as before it existed).
    public var poseRowsNameView = false
    /// The identity adapter's scale while training (0: the LoRA trains alone; see TuningIdentity).
    public var identityAdapterScale: Float = 0
    /// Rank of the text encoder's LoRA adapters (0: the text encoder stays frozen), within
    /// `optionalRanks`.
    public var textEncoderRank = 0
    /// Rank of the LoCon adapters on the UNet's ResNet convolutions (0: attention only), within
    /// `optionalRanks`. On troupe-mini they carry what the attention adapters miss (hair style,
    /// the small details a 64×64 sprite draws in a few pixels): docs/stages.md.
    public var convRank = 4
    /// Rank of LoRA adapters on the transformer blocks' feed-forward layers (GEGLU's
    /// `ff.net.0.proj` and `ff.net.2`, kohya's and PEFT's optional UNet targets; 0: off), within
    /// `optionalRanks`.
    public var feedForwardRank = 0
    /// γ of Min-SNR-γ weighting of the ε-MSE rows (NoiseSchedule.minSNRWeights; 0: off, every
    /// row weighs alike, the plain diffusion loss). Prior preservation's class rows stay
    /// unweighted, as in diffusers' DreamBooth LoRA script.
    public var snrGamma: Float = 0
    /// Pivotal tuning: > 0 also learns one text offset δ at the character's base word and the
    /// prompt's summary tokens (SummaryOffset; needs the base word), at this multiple of the
    /// adapters' learning rate; every stage continues it and the LoRA file carries it. 0: off
    /// (the model's troupe.json `lora_summary_offset` recommends a value). A single vector moved
    /// at the adapters' rate stays near zero (|δ| ≈ 0.2 after the three stages on troupe-mini,
    /// against the summary tokens' ≈ 9), hence a multiple (docs/stages.md).
    public var summaryOffsetLearningRateScale: Float = 0
    /// Whether the run learns the summary offset.
    public var learnsSummaryOffset: Bool { summaryOffsetLearningRateScale > 0 }
    /// The ranks an optional adapter family may have (0: off).
    public static let optionalRanks = 0...256
    public init() {}

    /// Stage 3's defaults on top of a stage-2 config; without the training judge (models
    /// whose images it cannot read) the pose/expression term is off.
    public static func stage3(from c: AppearanceTuningConfig, hasJudge: Bool = true) -> AppearanceTuningConfig {
        var s = c
        s.stage = 3; s.poseWeight = hasJudge ? 0.05 : 0
        return s
    }

    /// The tuning seed of member `k` of a soup of tunings that starts from `seed` (member 0
    /// keeps it): what `tune stages --soup` and `eval --stage-seeds` both tune with.
    public static func soupMemberSeed(_ seed: UInt64, member k: Int) -> UInt64 { seed &+ UInt64(k) &* 7919 }

    /// The defaults with a model's recommendations (troupe.json's lora_learning_rate, lora_steps).
    public static func recommended(by d: SamplingDefaults) -> AppearanceTuningConfig {
        var c = AppearanceTuningConfig()
        if let lr = d.loraLearningRate { c.learningRate = lr }
        if let n = d.loraSteps { c.steps = n }
        if let k = d.loraSummaryOffset { c.summaryOffsetLearningRateScale = k }
        return c
    }

    /// Stage 2's defaults on top of a stage-1 config; without an IdentityEncoder for the
    /// model's images the identity term is off (prior preservation stays).
    public static func stage2(from c: AppearanceTuningConfig, hasIdentityEncoder: Bool = true) -> AppearanceTuningConfig {
        var s = c
        s.stage = 2; s.identityWeight = hasIdentityEncoder ? 0.3 : 0; s.priorWeight = 0.5; s.steps = max(1, c.steps / 2); s.learningRate = c.learningRate * 0.5
        return s
    }

    // Run configs written before a field existed still load (absent keys keep the defaults;
    // runs from before `flip` existed trained with it on).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AppearanceTuningConfig()
        flip = try c.decode(.flip, or: true); steps = try c.decode(.steps, or: d.steps); rank = try c.decode(.rank, or: d.rank)
        learningRate = try c.decode(.learningRate, or: d.learningRate); batch = try c.decode(.batch, or: d.batch); warmup = try c.decode(.warmup, or: d.warmup)
        checkpointEvery = try c.decode(.checkpointEvery, or: d.checkpointEvery); seed = try c.decode(.seed, or: d.seed)
        // Runs from before the reconstruction term trained without it.
        reconstructionWeight = try c.decode(.reconstructionWeight, or: 0); reconstructionMaxTimestep = try c.decode(.reconstructionMaxTimestep, or: d.reconstructionMaxTimestep)
        stage = try c.decode(.stage, or: 1); identityWeight = try c.decode(.identityWeight, or: 0); priorWeight = try c.decode(.priorWeight, or: 0)
        // Runs from before identityMaxTimestep gave the identity term the reconstruction term's rows.
        identityMaxTimestep = try c.decode(.identityMaxTimestep, or: reconstructionMaxTimestep)
        poseWeight = try c.decode(.poseWeight, or: 0); poseRows = try c.decode(.poseRows, or: d.poseRows)
        poseRowsNameView = try c.decode(.poseRowsNameView, or: false)
        augmentation = try c.decode(.augmentation, or: d.augmentation)
        identityAdapterScale = try c.decode(.identityAdapterScale, or: 0)
        textEncoderRank = try c.decode(.textEncoderRank, or: 0)
        convRank = try c.decode(.convRank, or: 0)      // runs from before LoCon trained without it
        feedForwardRank = try c.decode(.feedForwardRank, or: 0)
        snrGamma = try c.decode(.snrGamma, or: 0)
        summaryOffsetLearningRateScale = try c.decode(.summaryOffsetLearningRateScale, or: 0)
    }
}

public final class AppearanceTuner: Trainer {
    public struct State: Codable, Sendable, VersionedTrainingState {
        public var version = 1
        public var config: AppearanceTuningConfig
        public var prompt: String
        public var step = 0
    }

    public let pipeline: StableDiffusionPipeline
    public let directory: String
    public private(set) var state: State
    /// LoRA tensors by PEFT key ("unet.<path>.lora_A.weight"), in a fixed order.
    public let loraNames: [String]
    let lora: [String: Tensor]
    let optimizer: AdamW
    let posteriors: [(mean: Tensor, std: Tensor)]
    /// The image each posterior encodes, [1, 3, H, W] in [−1, 1] (the reconstruction target).
    let images: [Tensor]
    /// Stage 2: the identity encoder and each image's identity vector.
    let identityEncoder: IdentityEncoder?
    let identityTargets: [Tensor]
    /// Stage 2: class images' posteriors and the class prompt.
    let priorPosteriors: [(mean: Tensor, std: Tensor)]
    let classPrompt: String?
    /// Stage 3: the pose/expression term (nil when off).
    let poseTerm: PoseExpressionTerm?
    /// Every text above as context (through the text encoder's adapters when it trains them).
    let prompts: TuningPrompts
    let schedule: NoiseSchedule
    /// The identity embedding the rows read (nil when the config's scale is 0).
    let identity: TuningIdentity?
    /// How many of `images` each reference expanded to (flips, augmented copies).
    let imagesPerReference: Int
    /// The pivotal offset δ [1, d] (config.learnsSummaryOffset; in `lora` under SummaryOffset.key), its
    /// base word, and its token positions in each text the character's rows read.
    let summaryDelta: Tensor?
    let baseWord: String?
    let summaryPositions: [String: [Int]]

    /// References: images [1, 3, H, W] in [−1, 1]. `directory`: the run folder (checkpoints/).
    /// Stage 2: `startFrom` (the stage-1 adapters, PEFT keys), `identityEncoder`, and
    /// `classImages` generated from `classPrompt` by the base model.
    public init(pipeline: StableDiffusionPipeline, references: [Tensor], prompt: String, config: AppearanceTuningConfig, directory: String,
                startFrom: [String: Tensor]? = nil, identityEncoder: IdentityEncoder? = nil,
                classImages: [Tensor] = [], classPrompt: String? = nil, judge: AttributeClassifier? = nil,
                identity: TuningIdentity? = nil, baseWord: String? = nil) throws {
        // Checked here too, not only by the commands: a resumed run's config comes from its folder.
        guard config.poseWeight == 0 || judge != nil else { throw GenerationError.badValue("the pose/expression term needs the training judge") }
        guard !references.isEmpty else { throw GenerationError.badValue("stage 1 needs at least one reference image") }
        guard config.identityWeight == 0 || identityEncoder != nil else { throw GenerationError.badValue("the identity term needs an IdentityEncoder") }
        guard config.priorWeight == 0 || (!classImages.isEmpty && classPrompt != nil) else {
            throw GenerationError.badValue("prior preservation needs class images and their prompt")
        }
        let ranks = AppearanceTuningConfig.optionalRanks
        guard ranks.contains(config.textEncoderRank), ranks.contains(config.convRank), ranks.contains(config.feedForwardRank) else {
            throw GenerationError.badValue("the text encoder's, the convolutions' and the feed-forward layers' LoRA ranks must be in \(ranks.lowerBound)…\(ranks.upperBound)")
        }
        guard config.snrGamma.isFinite, config.snrGamma >= 0 else { throw GenerationError.badValue("Min-SNR γ must be a finite number ≥ 0 (0: off)") }
        guard config.identityAdapterScale.isFinite else { throw GenerationError.badValue("the identity adapter's scale must be a finite number") }
        guard config.identityAdapterScale == 0 || identity?.referenceCount == references.count else {
            throw GenerationError.badValue(identity == nil ? "this stage trains with the identity embedding; it needs the identity adapter"
                                                            : "the identity embedding has \(identity!.referenceCount) references' tokens for \(references.count) references")
        }
        self.identity = config.identityAdapterScale == 0 ? nil : identity
        self.pipeline = pipeline; self.directory = directory
        state = State(config: config, prompt: prompt)
        schedule = try NoiseSchedule(pipeline.schedulerConfig)
        var rng = SplitMixRandom(seed: config.seed)
        var named: [String: Tensor] = [:]
        /// A trainable rank-`rank` adapter named `key` (PEFT's initialisation, or `startFrom`'s
        /// pair when given): down [rank, in, k…] (`fanIn` = in·k·k), up [out, rank, 1…].
        func adapter(key: String, rank: Int, down downTail: [Int], up upShape: [Int], fanIn: Int) throws -> LowRankAdapter {
            let bound = 1 / Float(fanIn).squareRoot()
            var down = Tensor.rand([rank] + downTail, low: -bound, high: bound, using: &rng)
            var up = Tensor(zeros: upShape)
            if let start = startFrom {
                guard let d = start["\(key).lora_A.weight"], let u = start["\(key).lora_B.weight"], d.shape == down.shape, u.shape == up.shape else {
                    throw GenerationError.badValue("the previous stage's LoRA lacks '\(key)' at rank \(rank)")
                }
                down = d.clone(); up = u.clone()
            }
            down.requiresGrad = true; up.requiresGrad = true
            named["\(key).lora_A.weight"] = down
            named["\(key).lora_B.weight"] = up
            return LowRankAdapter(down: down, up: up, scale: 1)
        }
        func attach(_ layer: Linear, key: String, rank: Int) throws {
            layer.adapters.append(try adapter(key: key, rank: rank, down: [layer.inFeatures], up: [layer.outFeatures, rank], fanIn: layer.inFeatures))
        }
        for (path, layer) in pipeline.unet.linears.sorted(by: { $0.key < $1.key }) where path.contains(".attn1.") || path.contains(".attn2.") {
            try attach(layer, key: "unet.\(path)", rank: config.rank)
        }
        if config.feedForwardRank > 0 {
            for (path, layer) in pipeline.unet.linears.sorted(by: { $0.key < $1.key }) where Self.isFeedForwardTarget(path) {
                try attach(layer, key: "unet.\(path)", rank: config.feedForwardRank)
            }
        }
        if config.convRank > 0 {
            for (path, conv) in pipeline.unet.convs.sorted(by: { $0.key < $1.key }) where Self.isLoConTarget(path) {
                let w = conv.weight.shape     // [out, in, k, k] (read without widening a half-precision weight)
                conv.adapters.append(try adapter(key: "unet.\(path)", rank: config.convRank, down: Array(w[1...]), up: [w[0], config.convRank, 1, 1],
                                                 fanIn: w[1] * w[2] * w[3]))
            }
        }
        if config.textEncoderRank > 0 {
            for (path, layer) in pipeline.textEncoder.linears.sorted(by: { $0.key < $1.key }) where path.contains(".self_attn.") || path.contains(".mlp.") {
                try attach(layer, key: "text_encoder.\(path)", rank: config.textEncoderRank)
            }
        }
        self.baseWord = baseWord
        let poseTexts = config.poseWeight > 0 ? PoseExpressionTerm.allTexts(prompt, namesView: config.poseRowsNameView) : []
        guard config.summaryOffsetLearningRateScale.isFinite, config.summaryOffsetLearningRateScale >= 0 else {
            throw GenerationError.badValue("the summary offset's learning-rate scale must be a number ≥ 0 (0: off)")
        }
        if config.learnsSummaryOffset {
            guard let baseWord else { throw GenerationError.badValue("the summary offset needs the character's base word") }
            var positions: [String: [Int]] = [:]
            for text in [prompt] + poseTexts {
                positions[text] = try SummaryOffset.positions(baseWord: baseWord, in: text, tokenizer: pipeline.tokenizer)
            }
            summaryPositions = positions
            let width = pipeline.textEncoder.config.hiddenSize
            var delta = Tensor(zeros: [1, width])
            if let start = startFrom?[SummaryOffset.key] {
                guard start.shape == delta.shape else { throw GenerationError.badValue("the previous stage's summary offset is \(start.shape), not [1, \(width)]") }
                delta = start.clone()
            }
            delta.requiresGrad = true
            named[SummaryOffset.key] = delta
            summaryDelta = delta
        } else {
            summaryPositions = [:]; summaryDelta = nil
        }
        lora = named
        loraNames = named.keys.sorted()
        optimizer = AdamW(parameters: loraNames.map { named[$0]! }, config: .init(learningRate: config.learningRate),
                          learningRateScales: loraNames.map { $0 == SummaryOffset.key ? config.summaryOffsetLearningRateScale : 1 })
        // Posterior of each reference (and of its mirror image with the flip augmentation, and
        // of its augmented copies).
        let imgs = try config.augmentation.validated().expand(references.flatMap { img in config.flip ? [img, img.flippedHorizontally()] : [img] },
                                                             seed: config.seed)
        images = imgs
        imagesPerReference = imgs.count / references.count
        posteriors = GradMode.noGrad {
            imgs.map { img in
                let (mean, logVar) = pipeline.vae.encode(img)
                return (mean, AutoencoderKL.posteriorStd(logVar))
            }
        }
        prompts = TuningPrompts(pipeline: pipeline, trainsEncoder: config.textEncoderRank > 0)
        self.identityEncoder = identityEncoder
        identityTargets = identityEncoder.map { e in imgs.map { e.embed($0) } } ?? []
        priorPosteriors = GradMode.noGrad {
            classImages.map { img in let (m, lv) = pipeline.vae.encode(img); return (m, AutoencoderKL.posteriorStd(lv)) }
        }
        self.classPrompt = classPrompt
        poseTerm = config.poseWeight > 0 ? judge.map(PoseExpressionTerm.init) : nil
    }

    /// [1, L, d] context of `text`, with the summary offset at its positions when there is one.
    func characterContext(_ text: String) -> Tensor {
        let c = prompts.context(text)
        guard let summaryDelta, let p = summaryPositions[text] else { return c }
        return c.addingAtPositions(p, summaryDelta)
    }

    /// The summary offset as tuned so far (nil when this run learns none).
    public var summaryOffset: SummaryOffset? {
        guard let summaryDelta, let baseWord else { return nil }
        return SummaryOffset(delta: summaryDelta.detached().clone(), baseWord: baseWord,
                             learningRateScale: state.config.summaryOffsetLearningRateScale)
    }

    /// The transformer blocks' feed-forward projections (GEGLU in, and out).
    public static func isFeedForwardTarget(_ path: String) -> Bool { path.contains(".ff.net.") }

    /// The convolutions LoCon adapts: the ResNet blocks' two 3×3 convolutions (LyCORIS's
    /// LoCon targets in the UNet's res blocks; the in/out, sampler and shortcut convs stay).
    static func isLoConTarget(_ path: String) -> Bool {
        path.contains(".resnets.") && (path.hasSuffix(".conv1") || path.hasSuffix(".conv2"))
    }

    /// Continues the run in `directory` from its latest checkpoint.
    public static func resume(pipeline: StableDiffusionPipeline, references: [Tensor], directory: String, identityEncoder: IdentityEncoder? = nil,
                              classImages: [Tensor] = [], classPrompt: String? = nil, judge: AttributeClassifier? = nil,
                              identity: TuningIdentity? = nil, baseWord: String? = nil) throws -> AppearanceTuner {
        let (state, weights, optimizer) = try TrainingCheckpoint(directory: directory).load(versioned: State.self)
        let t = try AppearanceTuner(pipeline: pipeline, references: references, prompt: state.prompt, config: state.config, directory: directory,
                                    identityEncoder: identityEncoder, classImages: classImages, classPrompt: classPrompt, judge: judge, identity: identity,
                                    baseWord: baseWord)
        t.state = state
        try TrainingCheckpoint.restore(t.lora, from: weights)
        if let optimizer { try TrainingCheckpoint.restore(t.optimizer, names: t.loraNames, from: optimizer) }
        return t
    }

    public var phase: String { "stage\(state.config.stage)" }
    public var stepsDone: Int { state.step }
    public var totalSteps: Int { state.config.steps }
    public var checkpointEvery: Int { state.config.checkpointEvery }

    public func trainStep() throws -> (losses: [String: Float], learningRate: Float) {
        let (losses, lr) = step(state.step)
        state.step += 1
        return (losses, lr)
    }

    /// L_rec over the rows with t < reconstructionMaxTimestep and L_id over those with
    /// t < identityMaxTimestep (nil when there are no such rows or both weights are 0; a term
    /// whose weight is 0 or that has no rows is nil). One decode serves both.
    func decodedLosses(xt: Tensor, eps: Tensor, timesteps: [Int], picks: [Int]) -> (rec: Tensor?, id: Tensor?)? {
        let c = state.config
        let recRows = c.reconstructionWeight > 0 ? (0..<timesteps.count).filter { timesteps[$0] < c.reconstructionMaxTimestep } : []
        let idRows = c.identityWeight > 0 && identityEncoder != nil ? (0..<timesteps.count).filter { timesteps[$0] < c.identityMaxTimestep } : []
        let rows = (0..<timesteps.count).filter { recRows.contains($0) || idRows.contains($0) }
        guard !rows.isEmpty else { return nil }
        let x0 = schedule.predictedOriginal(eps.selectingRows(rows), xt: xt.selectingRows(rows).detached(), timesteps: rows.map { timesteps[$0] })
            * (1 / pipeline.vae.config.scalingFactor)
        let decoded = pipeline.vae.decode(x0)
        /// The decoded images of `subset` (batch rows, all among `rows`).
        func decodedRows(_ subset: [Int]) -> Tensor { subset == rows ? decoded : decoded.selectingRows(subset.map { rows.firstIndex(of: $0)! }) }
        var rec: Tensor? = nil, id: Tensor? = nil
        if !recRows.isEmpty {
            let diff = decodedRows(recRows) - Tensor.concat(recRows.map { images[picks[$0]] }, dim: 0)
            rec = (diff.square() + 1e-6).sqrt().mean()
        }
        if !idRows.isEmpty, let enc = identityEncoder {
            id = enc.identityLoss(decodedRows(idRows).clamped(-1, 1), targets: Tensor.concat(idRows.map { identityTargets[picks[$0]] }, dim: 0))
        }
        return (rec, id)
    }

    /// L_pe (stage 3; PoseExpressionTerm): `poseRows` references noised to a high timestep
    /// under the prompt with a random pose and expression (and view, `poseRowsNameView`).
    func poseLoss(_ r: inout SplitMixRandom) -> (loss: Tensor, identity: Tensor?)? {
        let c = state.config
        guard let poseTerm, c.poseRows > 0 else { return nil }
        let d = PoseExpressionTerm.draw(rows: c.poseRows, sources: posteriors.count, namesView: c.poseRowsNameView, &r)
        let z0 = GradMode.noGrad {
            Tensor.concat(d.picks.map { i in posteriors[i].mean + posteriors[i].std * Tensor.randn(posteriors[i].mean.shape, using: &r) }, dim: 0)
                * pipeline.vae.config.scalingFactor
        }
        let noise = Tensor.randn(z0.shape, using: &r)
        let ext = identityAttention(rows: d.picks, &r)
        let xt = schedule.addNoise(z0, noise: noise, timesteps: d.timesteps)
        let texts = d.texts(state.prompt)
        let ctx = summaryDelta == nil ? prompts.contexts(texts) : Tensor.concat(texts.map(characterContext), dim: 0)
        let eps = pipeline.unet(xt, timesteps: d.timesteps.map(Float.init), context: ctx, extension: ext).sample
        let decoded = PoseExpressionTerm.decoded(prediction: eps, xt: xt, draw: d, schedule: schedule, vae: pipeline.vae)
        // The identity term on these rows too: the character under other context words.
        var id: Tensor? = nil
        if c.identityWeight > 0, let enc = identityEncoder {
            id = enc.identityLoss(decoded, targets: Tensor.concat(d.picks.map { identityTargets[$0] }, dim: 0))
        }
        return (poseTerm.loss(decoded: decoded, draw: d), id)
    }

    /// The identity tokens for batch rows made from `rows` (indices into `images`): each reads
    /// another reference's (TuningIdentity); nil without the identity embedding, and then no
    /// draw is taken from `r`, so such runs repeat the steps they took before it existed.
    func identityAttention(rows: [Int], _ r: inout SplitMixRandom) -> CrossAttentionExtension? {
        guard let identity else { return nil }
        let sources = rows.map { identity.source(for: $0 / imagesPerReference, &r) }
        return identity.attention(sources: sources, scale: state.config.identityAdapterScale)
    }

    /// L_prior on one class image (stage 2), drawn from the step's random stream.
    func priorLoss(_ r: inout SplitMixRandom) -> Tensor? {
        guard state.config.priorWeight > 0, let classPrompt, !priorPosteriors.isEmpty else { return nil }
        let i = Int(r.next() % UInt64(priorPosteriors.count))
        let z0 = GradMode.noGrad { (priorPosteriors[i].mean + priorPosteriors[i].std * Tensor.randn(priorPosteriors[i].mean.shape, using: &r)) * pipeline.vae.config.scalingFactor }
        let t = Int(r.next() % UInt64(schedule.alphasCumprod.count))
        let noise = Tensor.randn(z0.shape, using: &r)
        let out = pipeline.unet(schedule.addNoise(z0, noise: noise, timesteps: [t]), timesteps: [Float(t)], context: prompts.context(classPrompt)).sample
        return Tensor.mseLoss(out, schedule.trainingTarget(x0: z0, noise: noise, timesteps: [t]))
    }

    func step(_ step: Int) -> ([String: Float], Float) {
        let c = state.config
        var r = SplitMixRandom(seed: c.seed &* 0x9E37_79B9 ^ UInt64(step) &* 0x1000_0001)
        let picks = (0..<c.batch).map { _ in Int(r.next() % UInt64(posteriors.count)) }
        let z0 = GradMode.noGrad {
            Tensor.concat(picks.map { i in posteriors[i].mean + posteriors[i].std * Tensor.randn(posteriors[i].mean.shape, using: &r) }, dim: 0)
                * pipeline.vae.config.scalingFactor
        }
        let timesteps = picks.map { _ in Int(r.next() % UInt64(schedule.alphasCumprod.count)) }
        let noise = Tensor.randn(z0.shape, using: &r)
        let ext = identityAttention(rows: picks, &r)
        let b = c.batch
        let xt = schedule.addNoise(z0, noise: noise, timesteps: timesteps)
        let context = characterContext(state.prompt)
        let ctx = context.expanded([b, context.shape[1], context.shape[2]])
        let eps = pipeline.unet(xt, timesteps: timesteps.map(Float.init), context: ctx, extension: ext).sample
        let target = schedule.trainingTarget(x0: z0, noise: noise, timesteps: timesteps)
        let epsLoss = c.snrGamma > 0 ? Tensor.mseLoss(eps, target, rowWeights: schedule.minSNRWeights(timesteps: timesteps, gamma: c.snrGamma))
                                     : Tensor.mseLoss(eps, target)
        var loss = epsLoss
        var terms: [String: Float] = [:]
        if let low = decodedLosses(xt: xt, eps: eps, timesteps: timesteps, picks: picks) {
            if let rec = low.rec { loss = loss + rec * c.reconstructionWeight; terms["recon"] = rec.item() }
            if let id = low.id { loss = loss + id * c.identityWeight; terms["identity"] = id.item() }
        }
        if let prior = priorLoss(&r) { loss = loss + prior * c.priorWeight; terms["prior"] = prior.item() }
        if let pe = poseLoss(&r) {
            loss = loss + pe.loss * c.poseWeight; terms["pose_expression"] = pe.loss.item()
            if let id = pe.identity { loss = loss + id * c.identityWeight; terms["identity_pose"] = id.item() }
        }
        optimizer.zeroGrad()
        loss.backward()
        let lr = c.learningRate * LearningRateSchedule.cosine(warmup: min(c.warmup, c.steps / 5), total: c.steps).factor(at: step)
        optimizer.step(learningRate: lr)
        terms["eps"] = epsLoss.item()
        terms["loss"] = loss.item()
        return (terms, lr)
    }

    public func saveCheckpoint() throws {
        try TrainingCheckpoint(directory: directory).save(name: String(format: "step-%06d", state.step), tensors: lora,
                                                         optimizer: optimizer, optimizerNames: loraNames, state: state)
    }

    /// Writes the adapters as a PEFT-layout LoRA file (`generate --lora` reads it).
    public func saveLoRA(to path: String) throws {
        var m = ["format": "pt", "troupe_stage": String(state.config.stage), "steps": String(state.step), "rank": String(state.config.rank)]
        // A LoRA trained with the identity embedding expects it when sampling.
        if state.config.identityAdapterScale != 0 { m["troupe_identity_scale"] = String(state.config.identityAdapterScale) }
        if let offset = summaryOffset { m.merge(offset.metadata) { _, new in new } }
        try SafetensorsWriter.write(lora, to: path, metadata: m)
    }
}

extension Tensor {
    /// Mirror image of [B, C, H, W] along W.
    func flippedHorizontally() -> Tensor {
        let c = contiguous(), out = Tensor(uninitialized: shape)
        let w = shape[rank - 1], rows = count / Swift.max(w, 1)
        for r in 0..<rows { for x in 0..<w { out.dataPointer[r * w + x] = c.dataPointer[r * w + (w - 1 - x)] } }
        return out
    }
}
