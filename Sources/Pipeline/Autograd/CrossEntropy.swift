// Softmax cross-entropy over the last dim with integer targets (torch.nn.functional.
// cross_entropy, mean reduction), fused: the backward is (softmax − onehot) / rows.

import Foundation

extension Tensor {
    /// Mean of −log softmax(logits)[target] over rows; logits [N, C], targets N class indices.
    public func crossEntropy(_ targets: [Int]) -> Tensor {
        let c = shape[rank - 1], n = count / c
        precondition(targets.count == n, "\(targets.count) targets for \(n) rows")
        let x = contiguous().detached()
        let probs = Tensor(uninitialized: [n, c])
        var loss = 0.0
        for r in 0..<n {
            let row = x.dataPointer + r * c, p = probs.dataPointer + r * c
            precondition(targets[r] >= 0 && targets[r] < c, "target \(targets[r]) outside \(c) classes")
            var m = -Float.infinity
            for j in 0..<c { m = Swift.max(m, row[j]) }
            var s = 0.0
            for j in 0..<c { let e = Foundation.exp(Double(row[j] - m)); p[j] = Float(e); s += e }
            for j in 0..<c { p[j] = Float(Double(p[j]) / s) }
            loss += -(Double(row[targets[r]] - m) - Foundation.log(s))
        }
        let out = Tensor([Float(loss / Double(n))], shape: [])
        let inShape = shape
        return out.recording("crossEntropy", [self]) { g in
            let grad = probs.clone()
            let gp = grad.dataPointer, scale = g.item() / Float(n)
            for r in 0..<n { gp[r * c + targets[r]] -= 1 }
            for i in 0..<(n * c) { gp[i] *= scale }
            return [grad.reshaped(inShape)]
        }
    }
}
