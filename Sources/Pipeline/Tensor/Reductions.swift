// Reductions over any set of axes: the reduced axes are moved last (a copy only when they
// are not already innermost), then each row of R elements reduces in a SIMD loop.

extension Tensor {
    private func reduceLayout(_ axes: [Int]) -> (rows: Tensor, keptShape: [Int], keepDimShape: [Int], r: Int) {
        let ax = Set(axes.map { axis($0) })
        let kept = (0..<rank).filter { !ax.contains($0) }
        let red = (0..<rank).filter { ax.contains($0) }
        let moved = (kept + red == Array(0..<rank)) ? self.detached() : self.detached().permuted(kept + red)
        let r = red.map { shape[$0] }.reduce(1, *)
        let keepDimShape = (0..<rank).map { ax.contains($0) ? 1 : shape[$0] }
        return (moved.contiguous(), kept.map { shape[$0] }, keepDimShape, r)
    }

    private func rowReduce(_ axes: [Int], keepDim: Bool,
                           _ body: (UnsafeMutablePointer<Float>, Int) -> Float) -> Tensor {
        let (rows, keptShape, kdShape, r) = reduceLayout(axes)
        let out = Tensor(uninitialized: keepDim ? kdShape : keptShape)
        let n = out.count, p = rows.dataPointer, o = out.dataPointer
        Parallel.forEach(n, grain: Swift.max(1, 16384 / Swift.max(r, 1))) { i in
            o[i] = body(p + i * r, r)
        }
        return out
    }

    @inline(__always)
    static func rowSum(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var acc = Vec8(), j = 0
        while j + 8 <= n { acc += UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self); j += 8 }
        var s = acc.sum()
        while j < n { s += p[j]; j += 1 }
        return s
    }

    @inline(__always)
    static func rowMax(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var m = -Float.infinity, j = 0
        if n >= 8 {
            var acc = Vec8(repeating: -.infinity)
            while j + 8 <= n { acc = VectorMath.max(acc, UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self)); j += 8 }
            m = acc.max()
        }
        while j < n { m = Swift.max(m, p[j]); j += 1 }
        return m
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = axes ?? Array(0..<rank)
        let out = rowReduce(ax, keepDim: keepDim, Tensor.rowSum)
        let kd = (0..<rank).map { Set(ax.map { axis($0) }).contains($0) ? 1 : shape[$0] }
        let inShape = shape
        return out.recording("sum", [self]) { g in [g.reshaped(kd).expanded(inShape).contiguous()] }
    }

    public func mean(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = axes ?? Array(0..<rank)
        let n = ax.map { shape[axis($0)] }.reduce(1, *)
        return sum(axes: ax, keepDim: keepDim) * (1 / Float(Swift.max(n, 1)))
    }

    /// Variance over `axes`; `correction` 0 is the population variance (what norms use),
    /// 1 the unbiased estimate (torch.var's default).
    public func variance(axes: [Int]? = nil, keepDim: Bool = false, correction: Int = 0) -> Tensor {
        let ax = axes ?? Array(0..<rank)
        let n = ax.map { shape[axis($0)] }.reduce(1, *)
        let centred = self - mean(axes: ax, keepDim: true)
        return centred.square().sum(axes: ax, keepDim: keepDim) * (1 / Float(Swift.max(n - correction, 1)))
    }

    /// Maximum over `axes`; the gradient is split evenly among tied maxima.
    public func max(axes: [Int]? = nil, keepDim: Bool = false) -> Tensor {
        let ax = axes ?? Array(0..<rank)
        let out = rowReduce(ax, keepDim: keepDim, Tensor.rowMax)
        let kd = (0..<rank).map { Set(ax.map { axis($0) }).contains($0) ? 1 : shape[$0] }
        let x = detached(), y = out.detached()
        return out.recording("max", [self]) { g in
            let m = ElementwiseKernels.binary(EqualMaskOp.self, x, y.reshaped(kd))
            let ties = m.sum(axes: ax, keepDim: true)
            return [m * (g.reshaped(kd) / ties)]
        }
    }
}
