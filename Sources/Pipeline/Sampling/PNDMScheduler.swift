// PNDM with PLMS steps only (skip_prk_steps, SD 1.x's shipped scheduler), as diffusers'
// schedulers/scheduling_pndm.py. The linear multistep combination of the last four ε
// (coefficients 1; (3,−1)/2; (23,−16,5)/12; (55,−59,37,−9)/24) feeds the transfer
// φ(x_t, ε, t, t−δ) of the PNDM paper (arXiv 2202.09778), eq. 9:
//   x_{t−δ} = √(ᾱ_{t−δ}/ᾱ_t)·x_t − (ᾱ_{t−δ} − ᾱ_t)·ε / (ᾱ_t√(1−ᾱ_{t−δ}) + √(ᾱ_t(1−ᾱ_t)ᾱ_{t−δ}))
// The timestep list repeats its second entry: the first two calls form one Heun-like step.

public final class PNDMScheduler: AlphaBarScheduler {
    public let timesteps: [Float]
    public let initNoiseSigma: Float = 1
    let schedule: NoiseSchedule
    let stepRatio: Int
    let finalAlpha: Float
    private var ets: [Tensor] = []
    private var counter = 0
    private var curSample: Tensor?

    public init(_ c: SchedulerConfig, steps: Int) throws {
        schedule = try NoiseSchedule(c)
        let n = c.trainSteps, ratio = n / steps
        stepRatio = ratio
        guard c.skipPrkSteps ?? false else { throw SchedulerError.unsupported("PNDM with Runge–Kutta warm-up steps (skip_prk_steps = false)") }
        var base: [Float]
        switch c.timestepSpacing ?? "leading" {
        case "leading": base = (0..<steps).map { Float($0 * ratio + c.offset) }
        case "linspace": base = (0..<steps).map { Float((Double(n - 1) * Double($0) / Double(Swift.max(steps - 1, 1))).rounded(.toNearestOrEven)) }
        case "trailing": base = Array(TimestepSpacing.trailing(n, steps).reversed())
        case let s: throw SchedulerError.unsupported("timestep_spacing '\(s)'")
        }
        if base.count >= 2 { base = Array(base.dropLast()) + [base[base.count - 2], base[base.count - 1]] }
        timesteps = base.reversed()
        finalAlpha = (c.setAlphaToOne ?? true) ? 1 : schedule.alphasCumprod[0]
    }

    public func reset() { ets = []; counter = 0; curSample = nil }

    public func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor {
        var t = Int(timesteps[index]), prev = t - stepRatio
        if counter != 1 {
            ets = Array(ets.suffix(3)) + [output]
        } else {
            prev = t
            t += stepRatio
        }
        var x = sample, e: Tensor
        if ets.count == 1 && counter == 0 {
            e = output
            curSample = sample
        } else if ets.count == 1 && counter == 1 {
            e = (output + ets[0]) * 0.5
            x = curSample!
            curSample = nil
        } else if ets.count == 2 {
            e = (ets[1] * 3 - ets[0]) * 0.5
        } else if ets.count == 3 {
            e = (ets[2] * 23 - ets[1] * 16 + ets[0] * 5) * Float(1.0 / 12.0)
        } else {
            e = (ets[3] * 55 - ets[2] * 59 + ets[1] * 37 - ets[0] * 9) * Float(1.0 / 24.0)
        }
        counter += 1
        return transfer(x, t: t, prev: prev, output: e)
    }

    private func transfer(_ x: Tensor, t: Int, prev: Int, output: Tensor) -> Tensor {
        let a = schedule.alphasCumprod[t], aPrev = prev >= 0 ? schedule.alphasCumprod[prev] : finalAlpha
        let b = 1 - a, bPrev = 1 - aPrev
        var eps = output
        if schedule.prediction == .vPrediction { eps = output * a.squareRoot() + x * b.squareRoot() }
        let sampleCoeff = (aPrev / a).squareRoot()
        let denom = a * bPrev.squareRoot() + (a * b * aPrev).squareRoot()
        return x * sampleCoeff - eps * ((aPrev - a) / denom)
    }
}
