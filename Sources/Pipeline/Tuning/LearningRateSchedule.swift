// Learning-rate schedules as multipliers of the base rate, matching diffusers'
// get_constant_schedule(_with_warmup), get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup (num_cycles = 0.5) at every step, plus warmup–stable–decay
// (not in diffusers), which train-base uses to cool a long constant-rate run down at its end.

import Foundation

public enum LearningRateSchedule: Sendable, Codable, Equatable {
    case constant
    case constantWithWarmup(warmup: Int)
    /// Linear warmup to the base rate, then linear decay to 0 at `total`.
    case linear(warmup: Int, total: Int)
    /// Linear warmup, then half a cosine down to 0 at `total`.
    case cosine(warmup: Int, total: Int)

    /// Linear warmup, the base rate until `decayStart`, then a "1 − sqrt" cooldown to 0 at
    /// `total` (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed
    /// Training Durations": a short cooldown recovers most of what a schedule planned for the
    /// whole run gives, so a constant-rate run can be branched and cooled at any checkpoint).
    case warmupStableDecay(warmup: Int, decayStart: Int, total: Int)

    /// Multiplier of the base learning rate at optimiser step `step` (0-based).
    public func factor(at step: Int) -> Float {
        switch self {
        case .constant:
            return 1
        case .constantWithWarmup(let w):
            return step < w ? Float(step) / Float(Swift.max(1, w)) : 1
        case .linear(let w, let total):
            if step < w { return Float(step) / Float(Swift.max(1, w)) }
            return Swift.max(0, Float(total - step) / Float(Swift.max(1, total - w)))
        case .cosine(let w, let total):
            if step < w { return Float(step) / Float(Swift.max(1, w)) }
            let progress = Double(step - w) / Double(Swift.max(1, total - w))
            return Float(Swift.max(0, 0.5 * (1 + Foundation.cos(Double.pi * progress))))
        case .warmupStableDecay(let w, let start, let total):
            if step < w { return Float(step) / Float(Swift.max(1, w)) }
            if step < start { return 1 }
            let progress = Double(step - start) / Double(Swift.max(1, total - start))
            return Float(Swift.max(0, 1 - progress.squareRoot()))
        }
    }

    public func learningRate(base: Float, step: Int) -> Float { base * factor(at: step) }
}
