// AdamW with decoupled weight decay, step for step equal to torch.optim.AdamW
// (amsgrad = false, maximize = false):
//   θ ← θ − lr·λ·θ;  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²
//   θ ← θ − lr/(1−β1^t) · m / (√v/√(1−β2^t) + ε)

public final class AdamW {
    public struct Config: Sendable, Codable, Equatable {
        public var learningRate: Float = 1e-3
        public var beta1: Float = 0.9
        public var beta2: Float = 0.999
        public var eps: Float = 1e-8
        public var weightDecay: Float = 1e-2
        public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                    eps: Float = 1e-8, weightDecay: Float = 1e-2) {
            self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
            self.eps = eps; self.weightDecay = weightDecay
        }
    }

    public let parameters: [Tensor]
    public var config: Config
    /// Each parameter's learning rate as a multiple of the step's (torch's parameter groups with
    /// their own lr; the decoupled weight decay scales with it, as there). All 1 by default.
    public let learningRateScales: [Float]
    /// First and second moments, one per parameter (state that checkpoints must save).
    public private(set) var m: [Tensor]
    public private(set) var v: [Tensor]
    public private(set) var stepCount: Int = 0

    public init(parameters: [Tensor], config: Config = Config(), learningRateScales: [Float]? = nil) {
        precondition(parameters.allSatisfy { $0.isContiguous }, "AdamW needs contiguous parameters")
        precondition(learningRateScales.map { $0.count == parameters.count } ?? true, "one learning-rate scale per parameter")
        self.parameters = parameters
        self.learningRateScales = learningRateScales ?? [Float](repeating: 1, count: parameters.count)
        self.config = config
        m = parameters.map { Tensor(zeros: $0.shape) }
        v = parameters.map { Tensor(zeros: $0.shape) }
    }

    /// Restores optimiser state from a checkpoint.
    public func restore(step: Int, m: [Tensor], v: [Tensor]) {
        precondition(m.count == parameters.count && v.count == parameters.count, "AdamW state size")
        stepCount = step
        for i in parameters.indices {
            self.m[i].assign(m[i]); self.v[i].assign(v[i])
        }
    }

    /// One update with learning rate `lr` (default: config's), using each parameter's `.grad`.
    public func step(learningRate lr: Float? = nil) {
        stepCount += 1
        let lr = lr ?? config.learningRate
        let c = config
        let bc1 = 1 - Float(pow(Double(c.beta1), Double(stepCount)))
        let bc2 = 1 - Float(pow(Double(c.beta2), Double(stepCount)))
        let bc2Sqrt = bc2.squareRoot()
        for (i, p) in parameters.enumerated() {
            guard let g = p.grad?.contiguous() else { continue }
            let pp = p.dataPointer, gp = g.dataPointer, mp = m[i].dataPointer, vp = v[i].dataPointer
            let lr = lr * learningRateScales[i], stepSize = lr / bc1
            let decay = 1 - lr * c.weightDecay
            Parallel.forChunks(p.count, grain: 1 << 14) { range in
                for j in range {
                    pp[j] *= decay
                    mp[j] = c.beta1 * mp[j] + (1 - c.beta1) * gp[j]
                    vp[j] = c.beta2 * vp[j] + (1 - c.beta2) * gp[j] * gp[j]
                    pp[j] -= stepSize * mp[j] / (vp[j].squareRoot() / bc2Sqrt + c.eps)
                }
            }
        }
    }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
}

import Foundation
