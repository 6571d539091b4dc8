// DPM-Solver++(2M) (A1111's "DPM++ 2M", with Karras σ optionally), as diffusers'
// schedulers/scheduling_dpmsolver_multistep.py with algorithm_type "dpmsolver++",
// solver_order 2, solver_type "midpoint" (Lu et al., arXiv 2211.01095, Alg. 2):
//   α_t = 1/√(σ²+1), σ_t = σ·α_t, λ = log α_t − log σ_t, h = λ_{i+1} − λ_i
//   D_i = x̂₀ (ε: (x − σ_t ε)/α_t; v: α_t x − σ_t v)
//   first order: x' = (σ_{t'}/σ_t)·x − α_{t'}(e^{−h} − 1)·D_i
//   second order: r = h_{i−1}/h, D = D_i + (D_i − D_{i−1})/(2r):
//                 x' = (σ_{t'}/σ_t)·x − α_{t'}(e^{−h} − 1)·D
// First order on the first step, and on the last (final σ = 0, lower_order_final).

import Foundation

public final class DPMSolverMultistepScheduler: Scheduler {
    public let timesteps: [Float]
    public let sigmas: [Float]
    public let initNoiseSigma: Float = 1
    let prediction: Prediction
    let lowerOrderFinal: Bool
    private var previousX0: Tensor?

    public init(_ c: SchedulerConfig, steps: Int, karras: Bool) throws {
        let schedule = try NoiseSchedule(c)
        prediction = schedule.prediction
        if let a = c.algorithmType, a != "dpmsolver++" { throw SchedulerError.unsupported("DPM-Solver algorithm_type '\(a)' (dpmsolver++ only)") }
        if let o = c.solverOrder, o != 2 { throw SchedulerError.unsupported("DPM-Solver solver_order \(o) (2 only)") }
        if let s = c.solverType, s != "midpoint" { throw SchedulerError.unsupported("DPM-Solver solver_type '\(s)' (midpoint only)") }
        let n = c.trainSteps
        var ts: [Double]
        switch c.timestepSpacing ?? "linspace" {
        case "linspace":
            ts = (0...steps).map { (Double(n - 1) * Double($0) / Double(steps)).rounded(.toNearestOrEven) }.reversed().dropLast().map { $0 }
        case "leading":
            let r = n / (steps + 1)
            ts = (0...steps).map { Double($0 * r) }.reversed().dropLast().map { $0 + Double(c.offset) }
        case "trailing":
            let r = Double(n) / Double(steps)
            ts = (0..<steps).map { (Double(n) - Double($0) * r).rounded(.toNearestOrEven) - 1 }
        case let s: throw SchedulerError.unsupported("timestep_spacing '\(s)'")
        }
        let full = schedule.sigmas.map(Double.init)
        var sig: [Double]
        if karras {
            let logSigmas = full.map { Foundation.log($0) }
            sig = Sigmas.karras(min: full[0], max: full[full.count - 1], steps: steps)
            ts = sig.map { Sigmas.timestep(for: $0, logSigmas: logSigmas).rounded(.toNearestOrEven) }
        } else {
            sig = ts.map { Sigmas.interpolate(full, at: $0) }
        }
        let finalType = c.finalSigmasType ?? "zero"
        sigmas = (sig + [finalType == "sigma_min" ? full[0] : 0]).map { Float($0) }
        timesteps = ts.map { Float($0) }
        lowerOrderFinal = finalType == "zero" || (c.eulerAtFinal ?? false) || ((c.lowerOrderFinal ?? true) && steps < 15)
    }

    public func scaleModelInput(_ sample: Tensor, index: Int) -> Tensor { sample }
    /// α_t·x₀ + σ_t·z
    public func addNoise(_ original: Tensor, noise: Tensor, index: Int) -> Tensor {
        let (a, s) = alphaSigma(sigmas[index])
        return original * a + noise * s
    }

    public func reset() { previousX0 = nil }

    private func alphaSigma(_ s: Float) -> (Float, Float) { let a = 1 / (s * s + 1).squareRoot(); return (a, s * a) }
    private func lambda(_ s: Float) -> Float { let (a, st) = alphaSigma(s); return Foundation.log(a) - Foundation.log(st) }

    public func step(output: Tensor, index: Int, sample: Tensor, rng: inout TorchGenerator) -> Tensor {
        let (alphaS, sigmaS) = alphaSigma(sigmas[index])
        let x0: Tensor
        switch prediction {
        case .epsilon: x0 = (sample - output * sigmaS) / alphaS
        case .vPrediction: x0 = sample * alphaS - output * sigmaS
        case .sample: x0 = output
        }
        let (alphaT, sigmaT) = alphaSigma(sigmas[index + 1])
        let h = lambda(sigmas[index + 1]) - lambda(sigmas[index])
        let isLast = index == timesteps.count - 1
        let expm = Foundation.exp(-h) - 1
        var d = x0
        if let prev = previousX0, !(isLast && lowerOrderFinal), index >= 1 {
            let h0 = lambda(sigmas[index]) - lambda(sigmas[index - 1])
            let r0 = h0 / h
            d = x0 + (x0 - prev) * (0.5 / r0)
        }
        previousX0 = x0
        return sample * (sigmaT / sigmaS) - d * (alphaT * expm)
    }
}
