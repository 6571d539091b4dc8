// GroupNorm (torch.nn.GroupNorm) and LayerNorm over the last dim (torch.nn.LayerNorm), with
// the closed-form backward: dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · γ.

extension Tensor {
    /// Normalises each row of `rows`×`n` in place of `out`; returns per-row mean and rstd.
    private static func normaliseRows(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int, eps: Float,
                                      out: UnsafeMutablePointer<Float>,
                                      mean: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>) {
        Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
            let p = x + r * n
            // Two-pass in double-free form: mean, then centred sum of squares (stable).
            let m = Tensor.rowSum(p, n) / Float(n)
            var acc = Vec8(), j = 0
            let vm = Vec8(repeating: m)
            while j + 8 <= n {
                let d = UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self) - vm
                acc += d * d; j += 8
            }
            var ss = acc.sum()
            while j < n { let d = p[j] - m; ss += d * d; j += 1 }
            let rs = 1 / (ss / Float(n) + eps).squareRoot()
            mean[r] = m; rstd[r] = rs
            let o = out + r * n
            for k in 0..<n { o[k] = (p[k] - m) * rs }
        }
    }

    /// Row-wise backward of x̂ = (x − μ)·rstd given dx̂: writes dx.
    private static func normaliseRowsBackward(xhat: UnsafeMutablePointer<Float>, dxhat: UnsafeMutablePointer<Float>,
                                              rstd: UnsafeMutablePointer<Float>, rows: Int, n: Int,
                                              dx: UnsafeMutablePointer<Float>) {
        Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
            let xh = xhat + r * n, dh = dxhat + r * n, o = dx + r * n
            var s1: Float = 0, s2: Float = 0
            for k in 0..<n { s1 += dh[k]; s2 += dh[k] * xh[k] }
            let m1 = s1 / Float(n), m2 = s2 / Float(n), rs = rstd[r]
            for k in 0..<n { o[k] = rs * (dh[k] - m1 - xh[k] * m2) }
        }
    }

    /// GroupNorm over [B, C, ...] with `groups` groups and per-channel affine γ, β.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2 && shape[1] % groups == 0, "groupNorm: \(shape[1]) channels, \(groups) groups")
        let b = shape[0], c = shape[1], spatial = count / (b * c)
        let rows = b * groups, n = (c / groups) * spatial
        let x = contiguous()
        let xhat = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [rows]), rstd = Tensor(uninitialized: [rows])
        Tensor.normaliseRows(x.dataPointer, rows: rows, n: n, eps: eps, out: xhat.dataPointer,
                             mean: mean.dataPointer, rstd: rstd.dataPointer)
        let chanShape = [1, c] + [Int](repeating: 1, count: rank - 2)
        var out = xhat
        if let weight { out = ElementwiseKernels.binary(MulOp.self, out, weight.detached().reshaped(chanShape)) }
        if let bias { out = ElementwiseKernels.binary(AddOp.self, out, bias.detached().reshaped(chanShape)) }
        if out === xhat { out = xhat.clone() }
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let inShape = shape
        let w = weight?.detached()
        return out.recording("groupNorm", inputs) { g in
            let gc = g.contiguous()
            let dxhat = w.map { ElementwiseKernels.binary(MulOp.self, gc, $0.reshaped(chanShape)) } ?? gc
            let dx = Tensor(uninitialized: inShape)
            Tensor.normaliseRowsBackward(xhat: xhat.dataPointer, dxhat: dxhat.dataPointer, rstd: rstd.dataPointer,
                                         rows: rows, n: n, dx: dx.dataPointer)
            var grads: [Tensor?] = [dx]
            let reduceAxes = [0] + Array(2..<inShape.count)
            if weight != nil { grads.append((gc * xhat).sum(axes: reduceAxes)) }
            if bias != nil { grads.append(gc.sum(axes: reduceAxes)) }
            return grads
        }
    }

    /// LayerNorm over the last dimension with affine γ, β of that size.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let n = shape[rank - 1], rows = count / Swift.max(n, 1)
        let x = contiguous()
        let xhat = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [rows]), rstd = Tensor(uninitialized: [rows])
        Tensor.normaliseRows(x.dataPointer, rows: rows, n: n, eps: eps, out: xhat.dataPointer,
                             mean: mean.dataPointer, rstd: rstd.dataPointer)
        var out = xhat
        if let weight { out = ElementwiseKernels.binary(MulOp.self, out, weight.detached()) }
        if let bias { out = ElementwiseKernels.binary(AddOp.self, out, bias.detached()) }
        if out === xhat { out = xhat.clone() }
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let inShape = shape
        let w = weight?.detached()
        return out.recording("layerNorm", inputs) { g in
            let gc = g.contiguous()
            let dxhat = w.map { ElementwiseKernels.binary(MulOp.self, gc, $0) } ?? gc
            let dx = Tensor(uninitialized: inShape)
            Tensor.normaliseRowsBackward(xhat: xhat.dataPointer, dxhat: dxhat.dataPointer, rstd: rstd.dataPointer,
                                         rows: rows, n: n, dx: dx.dataPointer)
            var grads: [Tensor?] = [dx]
            let lead = Array(0..<(inShape.count - 1))
            if weight != nil { grads.append((gc * xhat).sum(axes: lead)) }
            if bias != nil { grads.append(gc.sum(axes: lead)) }
            return grads
        }
    }
}
