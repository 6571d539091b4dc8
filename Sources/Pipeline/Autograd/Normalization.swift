// GroupNorm (torch.nn.GroupNorm) and LayerNorm over the last dim (torch.nn.LayerNorm), with
// the closed-form backward: dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)), dx̂ = dy · γ.
// Kernels: Kernels/NormKernel.swift.

extension Tensor {
    private func normalised(_ L: NormLayout, name: String, affineSize: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        for a in [weight, bias].compactMap({ $0 }) {
            precondition(a.count == affineSize, "\(name): affine parameter of \(a.count) values for \(affineSize) channels")
        }
        let x = contiguous().detached()
        let w = weight?.contiguous().detached(), b = bias?.contiguous().detached()
        let out = Tensor(uninitialized: shape)
        let mean = Tensor(uninitialized: [L.rows]), rstd = Tensor(uninitialized: [L.rows])
        NormKernel.forward(x.dataPointer, L, eps: eps, weight: w.map { UnsafePointer($0.dataPointer) },
                           bias: b.map { UnsafePointer($0.dataPointer) }, out: out.dataPointer,
                           mean: mean.dataPointer, rstd: rstd.dataPointer)
        var inputs = [self]
        if let weight { inputs.append(weight) }
        if let bias { inputs.append(bias) }
        let inShape = shape, wShape = weight?.shape, bShape = bias?.shape
        return out.recording(name, inputs) { g in
            let gc = g.contiguous()
            let dx = Tensor(uninitialized: inShape)
            let dwRow = Tensor(uninitialized: [L.rows / L.groups, L.groups * L.segments])
            let dbRow = Tensor(uninitialized: [L.rows / L.groups, L.groups * L.segments])
            NormKernel.backward(x.dataPointer, dy: gc.dataPointer, L, mean: mean.dataPointer, rstd: rstd.dataPointer,
                                weight: w.map { UnsafePointer($0.dataPointer) }, dx: dx.dataPointer,
                                dwRow: dwRow.dataPointer, dbRow: dbRow.dataPointer)
            var grads: [Tensor?] = [dx]
            if let wShape { grads.append(dwRow.sum(axes: [0]).reshaped(wShape)) }
            if let bShape { grads.append(dbRow.sum(axes: [0]).reshaped(bShape)) }
            return grads
        }
    }

    /// GroupNorm over [B, C, ...] with `groups` groups and per-channel affine γ, β.
    public func groupNorm(groups: Int, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        precondition(rank >= 2 && shape[1] % groups == 0, "groupNorm: \(shape[1]) channels, \(groups) groups")
        let b = shape[0], c = shape[1]
        let L = NormLayout(rows: b * groups, groups: groups, segments: c / groups, spatial: count / Swift.max(b * c, 1))
        return normalised(L, name: "groupNorm", affineSize: c, weight: weight, bias: bias, eps: eps)
    }

    /// LayerNorm over the last dimension with affine γ, β of that size.
    public func layerNorm(weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let d = shape[rank - 1]
        let L = NormLayout(rows: count / Swift.max(d, 1), groups: 1, segments: d, spatial: 1)
        return normalised(L, name: "layerNorm", affineSize: d, weight: weight, bias: bias, eps: eps)
    }
}
