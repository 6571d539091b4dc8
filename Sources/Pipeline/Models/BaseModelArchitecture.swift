// The architecture of a model `troupe train-base` trains from scratch: SD 1.x-family configs
// for the three components, so the result loads through the same code path as any SD 1.x
// checkpoint. `.mini` is the shipped troupe-mini (64×64 images, 16×16×4 latents); `.micro` is
// a few-thousand-parameter variant that tests train for a handful of steps.

public struct BaseModelArchitecture: Sendable, Equatable {
    public var name: String
    public var textEncoder: CLIPTextConfig
    public var unet: UNetConfig
    public var vae: VAEConfig
    public var scheduler: SchedulerConfig
    /// Image side in pixels.
    public var imageSize: Int
    /// The sampling settings exported models recommend (troupe.json): guidance 6 is the middle
    /// of the 5–7 range troupe-mini's card measures prompt fidelity over; through a character's
    /// stage LoRA, 3 (held out, reference draw 1: guidance 6 / 4.5 / 3 / 2 gave identity
    /// consistency 0.644 / 0.665 / 0.695 / 0.679 at prompt fidelity 0.932 / 0.948 / 0.962 / 0.984),
    /// and there at multiplier 1.2 (over three reference draws at guidance 3, against 1: held out
    /// +0.018 consistency at −0.020 fidelity, built-in see docs/stages.md; 1.4 is past the peak).
    /// The stage tuners learn a summary offset at 30× the LoRA's learning rate (paired with the
    /// tuning without it: held out, ten reference draws, +0.009 identity consistency at −0.009
    /// fidelity, 0.747 / 0.958 in all; built-in, three, +0.007 at −0.031; docs/stages.md).
    public var recommended = SamplingDefaults(guidanceScale: 6, steps: 25, loraLearningRate: 2e-3, loraSteps: 400, loraGuidanceScale: 3, loraScale: 1.2,
                                              loraSummaryOffset: 30,
                                              oneActor: OneActorRecommendation(offsetSite: .summary, steps: 400, learningRate: 1e-3, identityWeight: 5, poseWeight: 0.3))

    /// troupe-mini. The UNet is sized for the sampling budget (4 images × 25 steps with
    /// guidance in under a second on 2 cores): attention only at 8×8 and 4×4, one layer per
    /// block. The text encoder keeps CLIP's full vocabulary (the real tokenizer), narrowed.
    public static let mini: BaseModelArchitecture = {
        var t = CLIPTextConfig()
        t.hiddenSize = 128; t.intermediateSize = 512; t.numHiddenLayers = 3; t.numAttentionHeads = 4
        var u = UNetConfig()
        u.blockOutChannels = [32, 64, 64]; u.layersPerBlock = 1
        u.downBlockTypes = ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]
        u.upBlockTypes = ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"]
        u.crossAttentionDim = 128; u.attentionHeadDim = .one(4); u.normNumGroups = 16; u.sampleSize = 16
        var v = VAEConfig()
        v.blockOutChannels = [16, 32, 64]; v.layersPerBlock = 1; v.normNumGroups = 8; v.sampleSize = 64
        return BaseModelArchitecture(name: "troupe-mini", textEncoder: t, unet: u, vae: v, scheduler: .troupeMini, imageSize: 64)
    }()

    /// troupe-mini with 8 latent channels instead of 4 (VAE latent_channels, UNet in/out): an
    /// expression is a sub-cell detail of the 16×16 latent, and 4 channels per 4×4-pixel cell
    /// leave it little room (see `eval --methods reconstruction`, latent sensitivity).
    public static let miniLatent8: BaseModelArchitecture = {
        var a = mini
        a.name = "troupe-mini-latent8"
        a.vae.latentChannels = 8
        a.unet.inChannels = 8; a.unet.outChannels = 8
        return a
    }()

    /// For tests: every component tiny, same structure.
    public static let micro: BaseModelArchitecture = {
        var a = mini
        a.name = "troupe-micro"
        a.textEncoder.hiddenSize = 16; a.textEncoder.intermediateSize = 32; a.textEncoder.numHiddenLayers = 1; a.textEncoder.numAttentionHeads = 2
        a.unet.blockOutChannels = [8, 16, 16]; a.unet.crossAttentionDim = 16; a.unet.attentionHeadDim = .one(2); a.unet.normNumGroups = 4
        a.vae.blockOutChannels = [4, 8, 8]; a.vae.normNumGroups = 4
        return a
    }()
}

extension SchedulerConfig {
    /// troupe-mini's default sampler: DPM-Solver++ 2M on SD's scaled-linear training schedule.
    public static let troupeMini: SchedulerConfig = {
        var c = SchedulerConfig()
        c.className = "DPMSolverMultistepScheduler"; c.numTrainTimesteps = 1000; c.betaStart = 0.00085; c.betaEnd = 0.012
        c.betaSchedule = "scaled_linear"; c.stepsOffset = 1; c.predictionType = "epsilon"; c.timestepSpacing = "trailing"
        c.solverOrder = 2; c.algorithmType = "dpmsolver++"; c.solverType = "midpoint"; c.lowerOrderFinal = true
        return c
    }()
}
