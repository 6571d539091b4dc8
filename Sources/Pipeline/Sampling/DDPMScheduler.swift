// DDPM ancestral sampling, as diffusers' schedulers/scheduling_ddpm.py (variance
// "fixed_small"), DDPM paper (arXiv 2006.11239) eq. 7:
//   μ̃ = √ᾱ_{t'}·β'_t/(1−ᾱ_t)·x̂₀ + √α'_t·(1−ᾱ_{t'})/(1−ᾱ_t)·x_t,  α'_t = ᾱ_t/ᾱ_{t'}, β'_t = 1 − α'_t
//   x_{t'} = μ̃ + √σ̃²·z,  σ̃² = (1−ᾱ_{t'})/(1−ᾱ_t)·β'_t,  z ~ N(0, I) drawn when t > 0
// x̂₀ is clipped to ±clip_sample_range when clip_sample (DDPM's default: on).

public final class DDPMScheduler: AlphaBarScheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    let schedule: NoiseSchedule
    let stepRatio: Int
    let clip: Float?

    public init(_ c: SchedulerConfig, steps: Int) throws {
        schedule = try NoiseSchedule(c)
        stepRatio = c.trainSteps / steps
        timesteps = try TimestepSpacing.discrete(c, steps: steps)
        if let v = c.varianceType, v != "fixed_small" { throw SchedulerError.unsupported("DDPM variance_type '\(v)'") }
        clip = (c.clipSample ?? true) ? Float(c.clipSampleRange ?? 1) : nil
    }

    public func reset() {}

    public func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor {
        let t = Int(timesteps[index]), prev = t - stepRatio
        let a = schedule.alphasCumprod[t], aPrev = prev >= 0 ? schedule.alphasCumprod[prev] : 1
        let b = 1 - a, bPrev = 1 - aPrev
        let curAlpha = a / aPrev, curBeta = 1 - curAlpha
        var x0: Tensor
        switch schedule.prediction {
        case .epsilon: x0 = (sample - output * b.squareRoot()) / a.squareRoot()
        case .vPrediction: x0 = sample * a.squareRoot() - output * b.squareRoot()
        case .sample: x0 = output
        }
        if let clip { x0 = x0.clamped(-clip, clip) }
        var mean = x0 * (aPrev.squareRoot() * curBeta / b) + sample * (curAlpha.squareRoot() * bPrev / b)
        if t > 0 {
            let noise = Tensor.randn(output.shape, using: &rng)
            let variance = Swift.max(bPrev / b * curBeta, 1e-20)
            mean = mean + noise * variance.squareRoot()
        }
        return mean
    }
}
