// The one protocol every sampler conforms to (ml-stable-diffusion's shape): timesteps for a
// step count, the initial noise scale, input scaling, and one step. Steps are addressed by
// index because PNDM repeats a timestep.

public protocol Scheduler: AnyObject {
    /// Model timesteps, one per step, in sampling order.
    var timesteps: [Float] { get }
    /// Multiplier of unit Gaussian noise for the first latents.
    var initNoiseSigma: Float { get }
    /// Input to the model at step `index` (Euler-family schedulers divide by √(σ² + 1)).
    func scaleModelInput(_ sample: Tensor, index: Int) -> Tensor
    /// x_{index+1} from the model output at step `index`. Stochastic samplers draw from `rng`
    /// in the order diffusers does.
    func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor
    /// Forgets multistep history (a new image).
    func reset()
    /// The noised sample at step `index` for img2img: x₀ carried to that step's noise level.
    func addNoise(_ original: Tensor, noise: Tensor, index: Int) -> Tensor
}

extension Scheduler {
    /// The first step of an img2img run of `strength` (diffusers get_timesteps):
    /// t_start = steps − min(⌊steps·strength⌋, steps), counted in this scheduler's timesteps.
    public func startIndex(steps: Int, strength: Float) -> Int {
        let initSteps = Swift.min(Int(Float(steps) * strength), steps)
        return Swift.max(steps - initSteps, 0)
    }
}

/// The ᾱ-parameterised schedulers (DDIM, DDPM, PNDM): the model sees x_t unscaled, and
/// img2img noising is √ᾱ_t·x₀ + √(1−ᾱ_t)·z at the step's timestep.
protocol AlphaBarScheduler: Scheduler {
    var schedule: NoiseSchedule { get }
}

extension AlphaBarScheduler {
    public func scaleModelInput(_ sample: Tensor, index: Int) -> Tensor { sample }

    public func addNoise(_ original: Tensor, noise: Tensor, index: Int) -> Tensor {
        let a = schedule.alphasCumprod[Int(timesteps[index])]
        return original * a.squareRoot() + noise * (1 - a).squareRoot()
    }
}

public enum SchedulerKind: String, CaseIterable, Sendable {
    case ddim, pndm, ddpm, euler
    case eulerAncestral = "euler-a"
    case dpmpp2m = "dpmpp-2m"
    case dpmpp2mKarras = "dpmpp-2m-karras"

    /// The kind a diffusers scheduler_config.json names.
    public static func from(className: String?) -> SchedulerKind? {
        switch className {
        case "DDIMScheduler": return .ddim
        case "PNDMScheduler": return .pndm
        case "DDPMScheduler": return .ddpm
        case "EulerDiscreteScheduler": return .euler
        case "EulerAncestralDiscreteScheduler": return .eulerAncestral
        case "DPMSolverMultistepScheduler": return .dpmpp2m
        default: return nil
        }
    }

    /// Builds the scheduler from a pipeline's config for `steps` steps.
    public func make(_ config: SchedulerConfig, steps: Int) throws -> Scheduler {
        // Leading spacing with an offset can step past the last training timestep.
        let maxSteps = config.trainSteps - config.offset
        guard maxSteps >= 1 else {
            throw SchedulerError.unsupported("scheduler_config.json: num_train_timesteps \(config.trainSteps) with steps_offset \(config.offset) leaves no step to sample; fix the model's scheduler config")
        }
        guard steps >= 1, steps <= maxSteps else {
            throw SchedulerError.unsupported("\(steps) steps: this model's scheduler allows 1…\(maxSteps)")
        }
        switch self {
        case .ddim: return try DDIMScheduler(config, steps: steps)
        case .pndm: return try PNDMScheduler(config, steps: steps)
        case .ddpm: return try DDPMScheduler(config, steps: steps)
        case .euler: return try EulerDiscreteScheduler(config, steps: steps, ancestral: false)
        case .eulerAncestral: return try EulerDiscreteScheduler(config, steps: steps, ancestral: true)
        case .dpmpp2m: return try DPMSolverMultistepScheduler(config, steps: steps, karras: config.useKarrasSigmas ?? false)
        case .dpmpp2mKarras: return try DPMSolverMultistepScheduler(config, steps: steps, karras: true)
        }
    }
}

/// Timestep grids of diffusers' `timestep_spacing` (Table 2 of arXiv 2305.08891).
enum TimestepSpacing {
    /// "leading": (0, r, 2r, …)·reversed + offset, r = N // steps.
    static func leading(_ n: Int, _ steps: Int, offset: Int) -> [Float] {
        let r = n / steps
        return (0..<steps).reversed().map { Float($0 * r + offset) }
    }
    /// "trailing": round(N, N − r, …) − 1 with r = N / steps (float).
    static func trailing(_ n: Int, _ steps: Int) -> [Float] {
        let r = Double(n) / Double(steps)
        let count = Int((Double(n) / r).rounded(.up))
        return (0..<count).map { Float((Double(n) - Double($0) * r).rounded(.toNearestOrEven) - 1) }
    }
    /// The integer timesteps of DDIM/DDPM for the config's spacing (leading by default).
    static func discrete(_ c: SchedulerConfig, steps: Int) throws -> [Float] {
        let n = c.trainSteps
        switch c.timestepSpacing ?? "leading" {
        case "leading": return leading(n, steps, offset: c.offset)
        case "trailing": return trailing(n, steps)
        case "linspace": return linspace(n, steps).map { Float($0.rounded(.toNearestOrEven)) }
        case let s: throw SchedulerError.unsupported("timestep_spacing '\(s)'")
        }
    }

    /// "linspace": linspace(0, N − 1, steps) reversed (float, not rounded).
    static func linspace(_ n: Int, _ steps: Int) -> [Double] {
        if steps == 1 { return [0] }
        return (0..<steps).reversed().map { Double(n - 1) * Double($0) / Double(steps - 1) }
    }
}
