// Euler and Euler ancestral samplers in σ-space (k-diffusion), as diffusers'
// scheduling_euler_discrete.py and scheduling_euler_ancestral_discrete.py (Karras et al.,
// arXiv 2206.00364, Alg. 2 with s_churn = 0):
//   σ_i from ᾱ at the timesteps (linear interpolation), then 0;  input x/√(σ²+1)
//   x̂₀ = x − σ·ε  (v-prediction: x̂₀ = v·(−σ/√(σ²+1)) + x/(σ²+1))
//   Euler:      x' = x + (x − x̂₀)/σ · (σ_{i+1} − σ_i)
//   ancestral:  σ↑ = √(σ_{i+1}²(σ_i² − σ_{i+1}²)/σ_i²), σ↓ = √(σ_{i+1}² − σ↑²),
//               x' = x + (x − x̂₀)/σ · (σ↓ − σ_i) + σ↑·z,  z drawn from the generator each step

import Foundation

public final class EulerDiscreteScheduler: Scheduler {
    public let timesteps: [Float]
    public let sigmas: [Float]
    public let initNoiseSigma: Float
    let prediction: Prediction
    let ancestral: Bool

    public init(_ c: SchedulerConfig, steps: Int, ancestral: Bool) throws {
        let schedule = try NoiseSchedule(c)
        prediction = schedule.prediction
        self.ancestral = ancestral
        let n = c.trainSteps
        let spacing = c.timestepSpacing ?? "linspace"
        var ts: [Double]
        switch spacing {
        case "linspace": ts = TimestepSpacing.linspace(n, steps).map { Double(Float($0)) }
        case "leading": ts = TimestepSpacing.leading(n, steps, offset: c.offset).map(Double.init)
        case "trailing": ts = TimestepSpacing.trailing(n, steps).map(Double.init)
        case let s: throw SchedulerError.unsupported("timestep_spacing '\(s)'")
        }
        if let it = c.interpolationType, it != "linear" { throw SchedulerError.unsupported("interpolation_type '\(it)'") }
        let full = schedule.sigmas.map(Double.init)
        var sig = ts.map { Sigmas.interpolate(full, at: $0) }
        if !ancestral && (c.useKarrasSigmas ?? false) {
            let logSigmas = full.map { Foundation.log($0) }
            sig = Sigmas.karras(min: sig[sig.count - 1], max: sig[0], steps: steps)
            ts = sig.map { Sigmas.timestep(for: $0, logSigmas: logSigmas) }
        }
        let last: Double = (c.finalSigmasType ?? "zero") == "sigma_min" ? full[0] : 0
        sigmas = (sig + [last]).map { Float($0) }
        timesteps = ts.map { Float($0) }
        let maxSigma = sigmas.max() ?? 1
        initNoiseSigma = (spacing == "linspace" || spacing == "trailing") ? maxSigma : (maxSigma * maxSigma + 1).squareRoot()
    }

    public func scaleModelInput(_ sample: Tensor, index: Int) -> Tensor {
        let s = sigmas[index]
        return sample / (s * s + 1).squareRoot()
    }

    /// x₀ + σ·z
    public func addNoise(_ original: Tensor, noise: Tensor, index: Int) -> Tensor {
        original + noise * sigmas[index]
    }

    public func reset() {}

    public func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor {
        let sigma = sigmas[index], next = sigmas[index + 1]
        let x0: Tensor
        switch prediction {
        case .epsilon: x0 = sample - output * sigma
        case .vPrediction: x0 = output * (-sigma / (sigma * sigma + 1).squareRoot()) + sample / (sigma * sigma + 1)
        case .sample: x0 = output
        }
        let derivative = (sample - x0) / sigma
        if !ancestral { return sample + derivative * (next - sigma) }
        let up = (next * next * (sigma * sigma - next * next) / (sigma * sigma)).squareRoot()
        let down = (next * next - up * up).squareRoot()
        let noise = Tensor.randn(output.shape, using: &rng)
        return sample + derivative * (down - sigma) + noise * up
    }
}

/// σ-schedule helpers shared by the σ-space samplers.
enum Sigmas {
    /// np.interp(t, arange(len(table)), table).
    static func interpolate(_ table: [Double], at t: Double) -> Double {
        if t <= 0 { return table[0] }
        if t >= Double(table.count - 1) { return table[table.count - 1] }
        let i = Int(t.rounded(.down)), f = t - Double(i)
        return table[i] + f * (table[i + 1] - table[i])
    }

    /// Karras et al. ρ = 7 schedule from σ_max down to σ_min over `steps` values.
    static func karras(min: Double, max: Double, steps: Int) -> [Double] {
        let rho = 7.0
        let minInv = Foundation.pow(min, 1 / rho), maxInv = Foundation.pow(max, 1 / rho)
        return (0..<steps).map { i in
            let ramp = steps == 1 ? 0 : Double(i) / Double(steps - 1)
            return Foundation.pow(maxInv + ramp * (minInv - maxInv), rho)
        }
    }

    /// diffusers' _sigma_to_t: fractional timestep whose log σ interpolates to log `sigma`.
    static func timestep(for sigma: Double, logSigmas: [Double]) -> Double {
        let ls = Foundation.log(Swift.max(sigma, 1e-10))
        // low = last index whose log σ ≤ ls, clipped to count − 2
        var low = 0
        for (i, v) in logSigmas.enumerated() where ls - v >= 0 { low = i }
        low = Swift.min(low, logSigmas.count - 2)
        let lo = logSigmas[low], hi = logSigmas[low + 1]
        let w = Swift.min(Swift.max((lo - ls) / (lo - hi), 0), 1)
        return (1 - w) * Double(low) + w * Double(low + 1)
    }
}
