// One generation, as the CLI and (later) the studio describe it: the single value both build
// and hand to StableDiffusionPipeline.generate (design §2, §7).

public struct GenerationRequest: Sendable, Equatable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var seed: UInt64 = 0
    public var steps: Int = SamplingDefaults.standard.steps
    public var guidanceScale: Float = SamplingDefaults.standard.guidanceScale
    /// nil: the scheduler the model folder ships (scheduler/scheduler_config.json).
    public var scheduler: SchedulerKind? = nil
    /// nil: the model's native size (unet sample_size × VAE factor, as diffusers).
    public var width: Int? = nil
    public var height: Int? = nil
    public var count: Int = 1
    /// A1111 numbering: 1 = last layer.
    public var clipSkip: Int = 1
    /// Unscaled initial noise [count, C, h, w]; nil draws it from `seed`.
    public var initLatents: Tensor? = nil
    /// img2img: the starting image [1, 3, H, W] in [−1, 1], and how much of it to redraw
    /// (0 keeps it, 1 ignores it).
    public var initImage: Tensor? = nil
    public var strength: Float = 0.75
    /// With a character (OneActor): what its controls set (the studio's sliders, the CLI's flags).
    public var characterControls: CharacterControls? = nil

    public init(prompt: String) { self.prompt = prompt }

    public static func == (a: GenerationRequest, b: GenerationRequest) -> Bool {
        a.prompt == b.prompt && a.negativePrompt == b.negativePrompt && a.seed == b.seed && a.steps == b.steps
            && a.guidanceScale == b.guidanceScale && a.scheduler == b.scheduler && a.width == b.width
            && a.height == b.height && a.count == b.count && a.clipSkip == b.clipSkip
            && a.strength == b.strength && a.initImage === b.initImage && a.characterControls == b.characterControls
            && (a.initLatents === b.initLatents || (a.initLatents?.toArray() == b.initLatents?.toArray() && a.initLatents?.shape == b.initLatents?.shape))
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case badSize(width: Int, height: Int, multiple: Int)
    case badValue(String)
    case cancelled

    public var description: String {
        switch self {
        case let .badSize(w, h, m): return "size \(w)×\(h) must be positive multiples of \(m) for this model"
        case let .badValue(s): return s
        case .cancelled: return "cancelled"
        }
    }
}

/// What a generation produced: final latents (before decoding) and 8-bit RGB images.
public struct GenerationResult {
    public let latents: Tensor
    /// One HWC RGB8 buffer per image.
    public let images: [[UInt8]]
    public let width: Int, height: Int
    public let schedulerName: String
}
