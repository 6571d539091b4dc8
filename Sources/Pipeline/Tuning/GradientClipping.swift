// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_.

import Foundation

public enum GradientClipping {
    /// Scales the gradients of `parameters` so their global L2 norm is at most `maxNorm`
    /// (torch.nn.utils.clip_grad_norm_); returns the norm before clipping.
    @discardableResult
    public static func clip(_ parameters: [Tensor], maxNorm: Float) -> Float {
        var total = 0.0
        for p in parameters {
            guard let g = p.grad else { continue }
            let c = g.contiguous()
            if c !== g { p.grad = c }
            var s = 0.0
            for i in 0..<c.count { let v = Double(c.dataPointer[i]); s += v * v }
            total += s
        }
        let norm = Float(total.squareRoot())
        if norm > maxNorm && norm.isFinite {
            let f = maxNorm / (norm + 1e-6)
            for p in parameters { guard let g = p.grad else { continue }; for i in 0..<g.count { g.dataPointer[i] *= f } }
        }
        return norm
    }
}
