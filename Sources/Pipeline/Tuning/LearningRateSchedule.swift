// Learning-rate schedules as multipliers of the base rate, matching diffusers'
// get_constant_schedule(_with_warmup), get_linear_schedule_with_warmup and
// get_cosine_schedule_with_warmup (num_cycles = 0.5) at every step.

import Foundation

public enum LearningRateSchedule: Sendable, Codable, Equatable {
    case constant
    case constantWithWarmup(warmup: Int)
    /// Linear warmup to the base rate, then linear decay to 0 at `total`.
    case linear(warmup: Int, total: Int)
    /// Linear warmup, then half a cosine down to 0 at `total`.
    case cosine(warmup: Int, total: Int)

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
        }
    }

    public func learningRate(base: Float, step: Int) -> Float { base * factor(at: step) }
}
