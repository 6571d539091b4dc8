// DDIM (η = 0), as diffusers' schedulers/scheduling_ddim.py. Paper (arXiv 2010.02502) eq. 12:
//   x̂₀ = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t          (v-prediction: x̂₀ = √ᾱ_t·x_t − √(1−ᾱ_t)·v)
//   x_{t−Δ} = √ᾱ_{t−Δ}·x̂₀ + √(1−ᾱ_{t−Δ})·ε̂
// with x̂₀ clipped to ±clip_sample_range when clip_sample (DDIM's default: on).

import Foundation

public final class DDIMScheduler: AlphaBarScheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    let schedule: NoiseSchedule
    let stepRatio: Int
    let finalAlpha: Float
    let clip: Float?

    public init(_ c: SchedulerConfig, steps: Int) throws {
        schedule = try NoiseSchedule(c)
        stepRatio = c.trainSteps / steps
        timesteps = try TimestepSpacing.discrete(c, steps: steps)
        finalAlpha = (c.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
        clip = (c.clipSample ?? true) ? Float(c.clipSampleRange ?? 1) : nil
    }

    public func reset() {}

    public func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor {
        let t = Int(timesteps[index]), prev = t - stepRatio
        let a = schedule.alphasCumprod[t], aPrev = prev >= 0 ? schedule.alphasCumprod[prev] : finalAlpha
        let sa = a.squareRoot(), sb = (1 - a).squareRoot()
        var x0: Tensor, eps: Tensor
        switch schedule.prediction {
        case .epsilon: x0 = (sample - output * sb) / sa; eps = output
        case .vPrediction: x0 = sample * sa - output * sb; eps = output * sa + sample * sb
        case .sample: x0 = output; eps = (sample - output * sa) / sb
        }
        if let clip { x0 = x0.clamped(-clip, clip) }
        return x0 * aPrev.squareRoot() + eps * (1 - aPrev).squareRoot()
    }
}
