// train-base's settings (see BaseModelTraining.swift for what each phase does). Saved in every
// checkpoint's state.json; run folders written before a field existed still resume with its default.

import Foundation

public struct BaseTrainingConfig: Codable, Sendable, Equatable {
    public var architecture = "mini"
    public var worldSeed: UInt64 = 7
    public var initSeed: UInt64 = 1
    public var vaeSteps = 800
    public var vaeBatch = 16
    public var vaeLearningRate: Float = 8e-4
    /// λ of the VAE's face-weighted reconstruction loss (0: plain MSE): pixels in
    /// World.expressionRegions weigh 1 + λ. With plain MSE the encoder gives an expression change a
    /// quarter of the latent change per unit of pixel change that pose or background get
    /// (`eval --methods reconstruction`, latent sensitivity), and ε-MSE then barely rewards
    /// learning expression words.
    public var vaeFaceWeight: Float = 0
    public var klWeight: Float = 1e-6
    public var unetSteps = 40000
    public var unetBatch = 32
    public var unetLearningRate: Float = 5e-4
    public var warmup = 200
    public var emaDecay: Float = 0.999
    public var maxGradNorm: Float = 1
    public var checkpointEvery = 250
    /// Weight of the x̂₀ attribute loss (0: off): the training judge's cross-entropy on the
    /// context attributes (pose, expression, view, background) of the decoded x̂₀ of the
    /// batch's low-noise samples. ε-MSE weighs every latent alike, so a mouth (a fraction of
    /// one latent cell) is the last thing it learns; this term asks for it directly (design
    /// §4's stage-3 loss, applied to the base model).
    public var judgeLossWeight: Float = 0
    /// Samples with t below this take part (x̂₀ is meaningful), at most `judgeLossRows` per step.
    public var judgeLossMaxTimestep = 250
    public var judgeLossRows = 8
    /// 0: the UNet phase keeps its rate after warm-up. N > 0: its last N steps cool the rate
    /// down to 0 (warmup–stable–decay), so a constant-rate run resumed with a new `unetSteps`
    /// and N ends with a cooled model; resuming it with more steps later re-raises the rate.
    public var unetDecaySteps = 0
    /// λ of the face-weighted ε loss (0: plain ε-MSE): latent cells over World.expressionRegions
    /// weigh 1 + λ, the rest 1 (normalised by the mean weight). ε-MSE weighs a cell by its area,
    /// so the face — 12% of the latent, the expression a fraction of that — is learned last;
    /// troupe-mini at step 9195 gave the same ε loss whichever expression word its caption
    /// named. The reported "loss" stays the plain ε-MSE so runs compare.
    public var faceLossWeight: Float = 0
    /// λ of the detail-weighted ε loss (0: off): the latent cells over the small identity
    /// details a caption names (World.namedDetailPixels: its accessory, its eye colour; a cell
    /// counts when any of its pixels shows one) weigh 1 + λ, the rest 1 (not renormalised: the
    /// term only adds). Why: troupe-mini at step 40 500 follows "wearing glasses" and "a scarf"
    /// (0.8–0.96) and barely "wearing earrings" (0.25–0.42), "a headband" or "green eyes" — the
    /// same words in the same captions, a few pixels of image each, a few cells of ε loss.
    public var detailLossWeight: Float = 0
    /// Weight of the expression-contrast loss (0: off), a diffusion-classifier objective (Li et
    /// al. 2023, "Your Diffusion Model is Secretly a Zero-Shot Classifier"; used for tuning by
    /// Qu et al. 2024, "Discriminative Probing and Tuning for Text-to-Image Generation"): for
    /// up to `expressionContrastRows` samples per step with t in [100, 800), the UNet also
    /// predicts ε under the caption with each other expression word; logits are minus the
    /// squared ε error summed over the face cells, and the loss is their cross-entropy with the
    /// true expression. Its gradient cancels on what the captions share and pushes only on how
    /// the prediction depends on the word — which ε-MSE leaves at ~0 (see faceLossWeight).
    public var expressionContrastWeight: Float = 0
    public var expressionContrastRows = 4
    /// Weight of the colour-contrast loss (0: off), the same diffusion-classifier objective on
    /// the colours a caption names: for up to `colorContrastRows` samples per step with t in
    /// [100, 800) whose caption names a skin, hair, eye or outfit colour, one of those drawn,
    /// the UNet also predicts ε under the caption with `colorContrastAlternatives` other values
    /// of it (same phrasing), over the latent cells that colour paints. Why: troupe-mini at step
    /// 44 500 draws "a robot in a teal outfit … walking under a blue sky" in a blue outfit in
    /// most seeds — the scene's colour word reaches the character — and ε-MSE rewards a
    /// caption's colour word only by the ε error it explains, which the scene's word shares;
    /// the contrast asks for the named colour against every other at the same scene words.
    public var colorContrastWeight: Float = 0
    public var colorContrastRows = 4
    public var colorContrastAlternatives = 4
    /// Weight of the caption probe's cross-entropy (0: off): a linear probe on the text
    /// encoder's end/padding tokens predicts the attributes each caption names
    /// (CaptionProbe says why: identity and expression words barely reached those tokens).
    public var captionProbeWeight: Float = 0
    /// The UNet step the learning-rate warm-up counts from: 0 for a run from scratch; the start
    /// step of a run continued from an exported folder (`continuing`), whose AdamW moments start
    /// at zero — Adam's first steps with fresh moments move every weight by about the full rate
    /// (Liu et al. 2020, RAdam, §3: why warm-up exists), which a trained model does not need.
    public var unetWarmupFrom = 0
    /// Until this UNet step the caption probe reads the text encoder's output detached: its
    /// freshly initialised head fits what the summary tokens already carry before its gradient
    /// reaches the encoder. A fresh probe's loss starts near 4 nats (×0.02, three to four times
    /// the ε loss). Measured on the branch from step 40 500: 873 steps of fit took it to 1.2
    /// nats (to 0.14 within 100 steps once it reached the encoder); held-out outfit colour fell
    /// there all the same (0.85 → 0.73), so that loss has another cause (troupe-mini's card).
    public var captionProbeFitUntil = 0
    /// Whether the probe also names the class and scene words (true) or only the identity
    /// words a caption spells out, as the probe of the run up to step 40 500 did. Every branch
    /// continued from 40 500 named them and lost outfit colour (held out 0.85 → 0.65–0.75); a
    /// branch without them (4 000 steps) kept it held out (0.81) and lost it built-in (0.96 →
    /// 0.67), so they are not that loss's cause (troupe-mini's card).
    public var captionProbeNamesContext = true
    public init() {}

    // Run folders written before a field existed still resume: absent keys keep the defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BaseTrainingConfig()
        architecture = try c.decode(.architecture, or: d.architecture); worldSeed = try c.decode(.worldSeed, or: d.worldSeed)
        initSeed = try c.decode(.initSeed, or: d.initSeed); vaeSteps = try c.decode(.vaeSteps, or: d.vaeSteps); vaeBatch = try c.decode(.vaeBatch, or: d.vaeBatch)
        vaeLearningRate = try c.decode(.vaeLearningRate, or: d.vaeLearningRate); vaeFaceWeight = try c.decode(.vaeFaceWeight, or: d.vaeFaceWeight); klWeight = try c.decode(.klWeight, or: d.klWeight)
        unetSteps = try c.decode(.unetSteps, or: d.unetSteps); unetBatch = try c.decode(.unetBatch, or: d.unetBatch)
        unetLearningRate = try c.decode(.unetLearningRate, or: d.unetLearningRate); warmup = try c.decode(.warmup, or: d.warmup)
        emaDecay = try c.decode(.emaDecay, or: d.emaDecay); maxGradNorm = try c.decode(.maxGradNorm, or: d.maxGradNorm)
        checkpointEvery = try c.decode(.checkpointEvery, or: d.checkpointEvery); judgeLossWeight = try c.decode(.judgeLossWeight, or: d.judgeLossWeight)
        judgeLossMaxTimestep = try c.decode(.judgeLossMaxTimestep, or: d.judgeLossMaxTimestep); judgeLossRows = try c.decode(.judgeLossRows, or: d.judgeLossRows)
        unetDecaySteps = try c.decode(.unetDecaySteps, or: d.unetDecaySteps); faceLossWeight = try c.decode(.faceLossWeight, or: d.faceLossWeight)
        expressionContrastWeight = try c.decode(.expressionContrastWeight, or: d.expressionContrastWeight)
        expressionContrastRows = try c.decode(.expressionContrastRows, or: d.expressionContrastRows)
        colorContrastWeight = try c.decode(.colorContrastWeight, or: d.colorContrastWeight)
        colorContrastRows = try c.decode(.colorContrastRows, or: d.colorContrastRows)
        colorContrastAlternatives = try c.decode(.colorContrastAlternatives, or: d.colorContrastAlternatives)
        captionProbeWeight = try c.decode(.captionProbeWeight, or: d.captionProbeWeight)
        detailLossWeight = try c.decode(.detailLossWeight, or: d.detailLossWeight)
        unetWarmupFrom = try c.decode(.unetWarmupFrom, or: d.unetWarmupFrom)
        captionProbeFitUntil = try c.decode(.captionProbeFitUntil, or: d.captionProbeFitUntil)
        captionProbeNamesContext = try c.decode(.captionProbeNamesContext, or: d.captionProbeNamesContext)
    }

    /// The UNet phase's learning-rate multiplier at `step`: a linear warm-up over `warmup` steps
    /// from `unetWarmupFrom`, then constant, or cooled to 0 over the last `unetDecaySteps`.
    public func unetLearningRateFactor(at step: Int) -> Float {
        let warm = LearningRateSchedule.constantWithWarmup(warmup: warmup).factor(at: step - unetWarmupFrom)
        guard unetDecaySteps > 0 else { return warm }
        return warm * LearningRateSchedule.warmupStableDecay(warmup: 0, decayStart: unetSteps - unetDecaySteps, total: unetSteps).factor(at: step)
    }

    public var resolvedArchitecture: BaseModelArchitecture {
        get throws {
            switch architecture {
            case "mini": return .mini
            case "micro": return .micro
            case "mini-latent8": return .miniLatent8
            default: throw CheckpointError.mismatch(path: "config", reason: "unknown architecture '\(architecture)' (mini, mini-latent8, micro)")
            }
        }
    }
}
