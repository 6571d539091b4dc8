// Differentiable conv2d (NCHW, weight [Cout, Cin, kH, kW]), matching torch.nn.functional.conv2d
// with groups = 1 and dilation = 1 (all Stable Diffusion convs).

extension Tensor {
    public func conv2d(_ weight: Tensor, _ bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d: input \(shape), weight \(weight.shape)")
        precondition(weight.shape[1] == shape[1], "conv2d: weight \(weight.shape) expects \(weight.shape[1]) input channels, got \(shape)")
        let g = ConvGeometry(channels: shape[1], height: shape[2], width: shape[3],
                             kernelH: weight.shape[2], kernelW: weight.shape[3],
                             strideH: stride, strideW: stride, padH: padding, padW: padding)
        precondition(g.outH > 0 && g.outW > 0, "conv2d: kernel larger than padded input \(shape)")
        let batch = shape[0], cout = weight.shape[0]
        let x = contiguous(), w = weight.contiguous(), b = bias?.contiguous()
        let out = Tensor(uninitialized: [batch, cout, g.outH, g.outW])
        FlopCounter.add(2 * Double(batch * cout * g.k * g.n))
        Conv2dKernel.forward(x: x.dataPointer, batch: batch, g, weight: w.dataPointer, cout: cout,
                             bias: b.map { UnsafePointer($0.dataPointer) }, out: out.dataPointer)
        let inputs = bias.map { [self, weight, $0] } ?? [self, weight]
        let xd = x.detached(), wd = w.detached()
        let needX = requiresGrad, needW = weight.requiresGrad, hasBias = bias != nil
        let xShape = shape, wShape = weight.shape
        return out.recording("conv2d", inputs) { grad in
            let gc = grad.contiguous()
            let dx = needX ? Tensor(zeros: xShape) : nil
            let dw = needW ? Tensor(uninitialized: wShape) : nil
            let db = hasBias ? Tensor(uninitialized: [cout]) : nil
            Conv2dKernel.backward(x: xd.dataPointer, batch: batch, g, weight: wd.dataPointer, cout: cout,
                                  gradOut: gc.dataPointer, dx: dx?.dataPointer, dw: dw?.dataPointer,
                                  db: db?.dataPointer)
            return hasBias ? [dx, dw, db] : [dx, dw]
        }
    }

    /// Nearest-neighbour 2× upsampling of [B, C, H, W] (diffusers Upsample2D's interpolate).
    public func upsampleNearest2x() -> Tensor {
        precondition(rank == 4, "upsample needs NCHW, got \(shape)")
        let (bc, h, w) = (shape[0] * shape[1], shape[2], shape[3])
        let x = contiguous()
        let out = Tensor(uninitialized: [shape[0], shape[1], 2 * h, 2 * w])
        let src = x.dataPointer, dst = out.dataPointer
        Parallel.forEach(bc * h, grain: 64) { r in
            let s = src + r * w, d0 = dst + r * 4 * w, d1 = d0 + 2 * w
            for j in 0..<w { d0[2 * j] = s[j]; d0[2 * j + 1] = s[j] }
            d1.update(from: d0, count: 2 * w)
        }
        let inShape = shape
        return out.recording("upsample2x", [self]) { g in
            let gc = g.contiguous()
            let dx = Tensor(uninitialized: inShape)
            let gs = gc.dataPointer, dd = dx.dataPointer
            Parallel.forEach(bc * h, grain: 64) { r in
                let g0 = gs + r * 4 * w, g1 = g0 + 2 * w, d = dd + r * w
                for j in 0..<w { d[j] = g0[2 * j] + g0[2 * j + 1] + g1[2 * j] + g1[2 * j + 1] }
            }
            return [dx]
        }
    }
}

extension Tensor {
    /// Zero padding of the last two dims of [B, C, H, W] (torch F.pad(x, (left, right, top, bottom))).
    public func zeroPadded2D(left: Int = 0, right: Int = 0, top: Int = 0, bottom: Int = 0) -> Tensor {
        precondition(rank == 4, "zeroPadded2D needs NCHW, got \(shape)")
        let (h, w) = (shape[2], shape[3])
        let out = Tensor(zeros: [shape[0], shape[1], h + top + bottom, w + left + right])
        out.sliced(2, top..<(top + h)).sliced(3, left..<(left + w)).assign(self)
        return out.recording("pad2d", [self]) { g in [g.sliced(2, top..<(top + h)).sliced(3, left..<(left + w)).contiguous()] }
    }
}

extension Tensor {
    /// conv2d with `weight` and, in the same pass, each of `downs` (LoCon down convolutions:
    /// [r, Cin, kH, kW], the same kernel, stride and padding), as one convolution with the
    /// weights stacked along Cout: [B, Cout + Σr, H', W'], the layer's channels first, then each
    /// down's. One column matrix serves the layer and its adapters (forward), and one scatter
    /// returns the input's gradient from both (backward) — instead of one each per adapter,
    /// what a LoCon adapter cost at full resolution. Equal to the separate convolutions
    /// (tested); the weights' gradients are computed only for the inputs that need them.
    public func conv2d(_ weight: Tensor, _ bias: Tensor?, downs: [Tensor], stride: Int = 1, padding: Int = 0) -> Tensor {
        precondition(rank == 4 && weight.rank == 4, "conv2d: input \(shape), weight \(weight.shape)")
        precondition(weight.shape[1] == shape[1], "conv2d: weight \(weight.shape) expects \(weight.shape[1]) input channels, got \(shape)")
        for d in downs { precondition(d.rank == 4 && Array(d.shape[1...]) == Array(weight.shape[1...]), "conv2d: down \(d.shape) does not match weight \(weight.shape)") }
        let g = ConvGeometry(channels: shape[1], height: shape[2], width: shape[3],
                             kernelH: weight.shape[2], kernelW: weight.shape[3],
                             strideH: stride, strideW: stride, padH: padding, padW: padding)
        precondition(g.outH > 0 && g.outW > 0, "conv2d: kernel larger than padded input \(shape)")
        let batch = shape[0], cout = weight.shape[0]
        let ranks = downs.map { $0.shape[0] }, extra = ranks.reduce(0, +), total = cout + extra
        // The stacked weight [Cout + Σr, K] and bias (zeros for the downs' channels).
        let x = contiguous(), w = weight.contiguous(), ds = downs.map { $0.contiguous() }
        let stacked = Tensor(uninitialized: [total] + Array(weight.shape[1...]))
        stacked.dataPointer.update(from: w.dataPointer, count: w.count)
        var at = w.count
        for d in ds { (stacked.dataPointer + at).update(from: d.dataPointer, count: d.count); at += d.count }
        var stackedBias: Tensor? = nil
        if let bias {
            let b = Tensor(zeros: [total])
            b.dataPointer.update(from: bias.contiguous().dataPointer, count: cout)
            stackedBias = b
        }
        let out = Tensor(uninitialized: [batch, total, g.outH, g.outW])
        FlopCounter.add(2 * Double(batch * total * g.k * g.n))
        Conv2dKernel.forward(x: x.dataPointer, batch: batch, g, weight: stacked.dataPointer, cout: total,
                             bias: stackedBias.map { UnsafePointer($0.dataPointer) }, out: out.dataPointer)
        let inputs = [self, weight] + (bias.map { [$0] } ?? []) + downs
        let xd = x.detached(), wd = w.detached()
        let needX = requiresGrad, needW = weight.requiresGrad, needB = bias?.requiresGrad ?? false
        let needDowns = downs.map(\.requiresGrad)
        let xShape = shape, hasBias = bias != nil
        return out.recording("conv2d+downs", inputs) { grad in
            let gc = grad.contiguous()
            let n = g.n
            /// Rows `rows` of the gradient, [B, rows.count, N] contiguous.
            func gradRows(_ rows: Range<Int>) -> Tensor {
                let t = Tensor(uninitialized: [batch, rows.count, n])
                for b in 0..<batch { (t.dataPointer + b * rows.count * n).update(from: gc.dataPointer + (b * total + rows.lowerBound) * n, count: rows.count * n) }
                return t
            }
            var dx: Tensor? = nil
            if needX {
                // One Wᵀ·dY over the stacked weight, one scatter back into the image.
                let t = Tensor(zeros: xShape)
                Conv2dKernel.backward(x: xd.dataPointer, batch: batch, g, weight: stacked.dataPointer, cout: total,
                                      gradOut: gc.dataPointer, dx: t.dataPointer, dw: nil, db: nil)
                dx = t
            }
            var dw: Tensor? = nil, db: Tensor? = nil
            if needW || needB {
                let gy = gradRows(0..<cout)
                let tw = needW ? Tensor(uninitialized: wd.shape) : nil, tb = needB ? Tensor(uninitialized: [cout]) : nil
                Conv2dKernel.backward(x: xd.dataPointer, batch: batch, g, weight: wd.dataPointer, cout: cout, gradOut: gy.dataPointer,
                                      dx: nil, dw: tw?.dataPointer, db: tb?.dataPointer)
                dw = tw; db = tb
            }
            var dDowns: [Tensor?] = Array(repeating: nil, count: downs.count)
            if needDowns.contains(true) {
                // The downs' weight gradients together: dY rows of every down · col(x)ᵀ.
                let gz = gradRows(cout..<total)
                let dAll = Tensor(uninitialized: [extra] + Array(weight.shape[1...]))
                // The downs' rows of the stacked weight (only dw is asked for; the weight is unused).
                Conv2dKernel.backward(x: xd.dataPointer, batch: batch, g, weight: stacked.dataPointer + cout * g.k, cout: extra, gradOut: gz.dataPointer,
                                      dx: nil, dw: dAll.dataPointer, db: nil)
                var row = 0
                for (i, r) in ranks.enumerated() {
                    if needDowns[i] { dDowns[i] = dAll.sliced(0, row..<(row + r)).contiguous() }
                    row += r
                }
            }
            return [dx, dw] + (hasBias ? [db] : []) + dDowns
        }
    }
}
