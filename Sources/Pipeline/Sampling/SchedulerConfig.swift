// scheduler/scheduler_config.json as diffusers writes it. Every field is optional because
// each scheduler class has its own defaults (DDIM clips x̂₀ by default, PNDM does not know
// the field, …); the schedulers resolve them, as diffusers' from_config does.

import Foundation

public struct SchedulerConfig: Codable, Sendable, Equatable {
    public var className: String?
    public var numTrainTimesteps: Int?
    public var betaStart: Double?, betaEnd: Double?
    public var betaSchedule: String?
    public var trainedBetas: [Double]?
    public var predictionType: String?
    public var stepsOffset: Int?
    public var timestepSpacing: String?
    public var setAlphaToOne: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var skipPrkSteps: Bool?
    public var useKarrasSigmas: Bool?
    public var solverOrder: Int?
    public var algorithmType: String?
    public var solverType: String?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var finalSigmasType: String?
    public var varianceType: String?
    public var interpolationType: String?
    public var rescaleBetasZeroSnr: Bool?
    public var thresholding: Bool?

    enum CodingKeys: String, CodingKey {
        case className = "_class_name", numTrainTimesteps = "num_train_timesteps", betaStart = "beta_start", betaEnd = "beta_end"
        case betaSchedule = "beta_schedule", trainedBetas = "trained_betas", predictionType = "prediction_type"
        case stepsOffset = "steps_offset", timestepSpacing = "timestep_spacing", setAlphaToOne = "set_alpha_to_one"
        case clipSample = "clip_sample", clipSampleRange = "clip_sample_range", skipPrkSteps = "skip_prk_steps"
        case useKarrasSigmas = "use_karras_sigmas", solverOrder = "solver_order", algorithmType = "algorithm_type"
        case solverType = "solver_type", lowerOrderFinal = "lower_order_final", eulerAtFinal = "euler_at_final"
        case finalSigmasType = "final_sigmas_type", varianceType = "variance_type", interpolationType = "interpolation_type"
        case rescaleBetasZeroSnr = "rescale_betas_zero_snr", thresholding
    }

    public init() {}

    /// SD 1.x's shipped scheduler (PNDM, scaled-linear betas 0.00085…0.012, steps_offset 1).
    public static let stableDiffusion1: SchedulerConfig = {
        var c = SchedulerConfig()
        c.className = "PNDMScheduler"; c.numTrainTimesteps = 1000; c.betaStart = 0.00085; c.betaEnd = 0.012
        c.betaSchedule = "scaled_linear"; c.skipPrkSteps = true; c.stepsOffset = 1; c.setAlphaToOne = false
        c.predictionType = "epsilon"; c.timestepSpacing = "leading"
        return c
    }()

    public var trainSteps: Int { numTrainTimesteps ?? 1000 }
    public var offset: Int { stepsOffset ?? 0 }
}

public enum Prediction: String, Sendable { case epsilon, vPrediction = "v_prediction", sample }

public enum SchedulerError: Error, CustomStringConvertible {
    case unsupported(String)
    public var description: String {
        switch self { case .unsupported(let s): return "scheduler: \(s)" }
    }
}

/// β, α and ᾱ (alphas_cumprod) of the training noise schedule, computed as torch does in
/// float32 (linspace as ATen computes it; cumprod accumulates in double).
public struct NoiseSchedule: Sendable {
    public let betas: [Float]
    public let alphasCumprod: [Float]
    public let prediction: Prediction

    public init(_ c: SchedulerConfig) throws {
        let n = c.trainSteps
        guard (1...100_000).contains(n) else { throw SchedulerError.unsupported("num_train_timesteps \(n) (must be in 1…100000)") }
        guard (0...10_000).contains(c.offset) else { throw SchedulerError.unsupported("steps_offset \(c.offset) (must be in 0…10000)") }
        let start = Float(c.betaStart ?? 0.0001), end = Float(c.betaEnd ?? 0.02)
        guard start.isFinite, end.isFinite, start > 0, end > 0, start < 1, end < 1 else {
            throw SchedulerError.unsupported("beta_start \(start) / beta_end \(end) (each must be in (0, 1))")
        }
        if let tb = c.trainedBetas {
            guard tb.count == n, tb.allSatisfy({ $0 > 0 && $0 < 1 }) else {
                throw SchedulerError.unsupported("trained_betas: need num_train_timesteps (\(n)) values, each in (0, 1)")
            }
        }
        switch c.betaSchedule ?? "linear" {
        case _ where c.trainedBetas != nil: betas = c.trainedBetas!.map { Float($0) }
        case "linear": betas = NoiseSchedule.linspace(start, end, n)
        case "scaled_linear": betas = NoiseSchedule.linspace(start.squareRoot(), end.squareRoot(), n).map { $0 * $0 }
        case "squaredcos_cap_v2":
            func a(_ t: Double) -> Double { let v = Foundation.cos((t + 0.008) / 1.008 * Double.pi / 2); return v * v }
            betas = (0..<n).map { i in Float(Swift.min(1 - a(Double(i + 1) / Double(n)) / a(Double(i) / Double(n)), 0.999)) }
        case let s: throw SchedulerError.unsupported("beta_schedule '\(s)'")
        }
        if c.rescaleBetasZeroSnr == true { throw SchedulerError.unsupported("rescale_betas_zero_snr") }
        if c.thresholding == true { throw SchedulerError.unsupported("thresholding") }
        var acc = 1.0
        alphasCumprod = betas.map { b in acc *= Double(1 - b); return Float(acc) }
        guard let p = Prediction(rawValue: c.predictionType ?? "epsilon") else {
            throw SchedulerError.unsupported("prediction_type '\(c.predictionType ?? "")'")
        }
        prediction = p
    }

    /// torch.linspace in float32, as ATen's kernel computes it (from both ends).
    static func linspace(_ a: Float, _ b: Float, _ n: Int) -> [Float] {
        if n == 1 { return [a] }
        let step = (b - a) / Float(n - 1)
        let half = n / 2
        return (0..<n).map { i in i < half ? a + step * Float(i) : b - step * Float(n - i - 1) }
    }

    /// The forward process for training, one timestep per batch row:
    /// x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (diffusers' DDPMScheduler.add_noise).
    public func addNoise(_ x0: Tensor, noise: Tensor, timesteps: [Int]) -> Tensor {
        precondition(timesteps.count == x0.shape[0], "\(timesteps.count) timesteps for a batch of \(x0.shape[0])")
        let shape = [timesteps.count] + Array(repeating: 1, count: x0.rank - 1)
        let signal = Tensor(timesteps.map { alphasCumprod[$0].squareRoot() }, shape: shape)
        let noiseScale = Tensor(timesteps.map { (1 - alphasCumprod[$0]).squareRoot() }, shape: shape)
        return x0 * signal + noise * noiseScale
    }

    /// What the model is trained to predict for x_t = addNoise(x₀, ε, t), by prediction type:
    /// ε; v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀ (diffusers' get_velocity); or x₀ — the target of
    /// train_text_to_image.py's loss, so every tuner's MSE follows the model's prediction_type.
    public func trainingTarget(x0: Tensor, noise: Tensor, timesteps: [Int]) -> Tensor {
        switch prediction {
        case .epsilon: return noise
        case .vPrediction: return velocity(x0, noise: noise, timesteps: timesteps)
        case .sample: return x0
        }
    }

    /// The model's prediction of the clean latents from x_t, one timestep per batch row
    /// (diffusers' `pred_original_sample`):
    ///   ε: x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t;  v: x̂₀ = √ᾱ_t·x_t − √(1−ᾱ_t)·v̂;  sample: x̂₀ = the output.
    /// Differentiable in `output` (and in `xt`, which callers pass detached).
    public func predictedOriginal(_ output: Tensor, xt: Tensor, timesteps: [Int]) -> Tensor {
        precondition(timesteps.count == xt.shape[0] && output.shape == xt.shape, "one timestep per row of x_t, output shaped like it")
        let shape = [timesteps.count] + Array(repeating: 1, count: xt.rank - 1)
        let signal = Tensor(timesteps.map { alphasCumprod[$0].squareRoot() }, shape: shape)
        let noiseScale = Tensor(timesteps.map { (1 - alphasCumprod[$0]).squareRoot() }, shape: shape)
        switch prediction {
        case .epsilon: return (xt - output * noiseScale) * Tensor(timesteps.map { 1 / alphasCumprod[$0].squareRoot() }, shape: shape)
        case .vPrediction: return xt * signal - output * noiseScale
        case .sample: return output
        }
    }

    /// Min-SNR-γ loss weights (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
    /// Weighting Strategy", §3.4), one per batch row, as diffusers' training scripts compute them
    /// (`--snr_gamma` in train_text_to_image.py and the LoRA/DreamBooth scripts, SNR from
    /// training_utils.compute_snr): SNR_t = (√ᾱ_t / √(1−ᾱ_t))², and the row's MSE weighs
    ///   ε: min(SNR_t, γ)/SNR_t;  v: min(SNR_t, γ)/(SNR_t + 1);  x₀: min(SNR_t, γ)
    /// — each the paper's x₀-space weight min(SNR_t, γ) carried into the prediction's own space,
    /// so the nearly-clean rows, which ε-MSE weighs as much as any other, stop dominating.
    public func minSNRWeights(timesteps: [Int], gamma: Float) -> [Float] {
        timesteps.map { t in
            let alpha = alphasCumprod[t].squareRoot(), sigma = (1 - alphasCumprod[t]).squareRoot()
            let snr = (alpha / sigma) * (alpha / sigma)
            let clipped = Swift.min(snr, gamma)
            switch prediction {
            case .epsilon: return clipped / snr
            case .vPrediction: return clipped / (snr + 1)
            case .sample: return clipped
            }
        }
    }

    /// σ(t) = √((1 − ᾱ_t)/ᾱ_t) for every training step.
    public var sigmas: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }
}
