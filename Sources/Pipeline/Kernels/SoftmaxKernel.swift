// Row softmax in place: y = exp(x − max) / Σ exp(x − max), SIMD exp.

enum SoftmaxKernel {
    @inline(__always)
    static func row(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        let s = unnormalisedRow(p, n)
        let inv = Vec8(repeating: s > 0 ? 1 / s : 0)
        var j = 0
        while j + 8 <= n {
            let v = UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self) * inv
            UnsafeMutableRawPointer(p + j).storeBytes(of: v, as: Vec8.self); j += 8
        }
        while j < n { p[j] *= inv[0]; j += 1 }
    }

    /// Writes exp(x − max) over the row and returns its sum (0 for a fully masked row), so a
    /// caller that multiplies by V can normalise the narrow product instead of the wide row.
    @inline(__always)
    static func unnormalisedRow(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        unnormalisedRow(p, n, max: Tensor.rowMax(p, n))
    }

    /// As above, with the row maximum already known.
    @inline(__always)
    static func unnormalisedRow(_ p: UnsafeMutablePointer<Float>, _ n: Int, max m: Float) -> Float {
        if m == -.infinity { p.update(repeating: 0, count: n); return 0 }  // fully masked row
        let vm = Vec8(repeating: m)
        var acc = Vec8(), j = 0
        while j + 8 <= n {
            let e = VectorMath.exp(UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self) - vm)
            UnsafeMutableRawPointer(p + j).storeBytes(of: e, as: Vec8.self)
            acc += e; j += 8
        }
        var s = acc.sum()
        while j < n { let e = VectorMath.exp(p[j] - m); p[j] = e; s += e; j += 1 }
        return s
    }

    /// dx = y · (dy − Σ dy·y), per row, written over dy.
    @inline(__always)
    static func rowBackward(y: UnsafePointer<Float>, dy: UnsafeMutablePointer<Float>, _ n: Int) {
        var acc = Vec8(), j = 0
        while j + 8 <= n {
            acc += UnsafeRawPointer(y + j).loadUnaligned(as: Vec8.self) * UnsafeRawPointer(dy + j).loadUnaligned(as: Vec8.self)
            j += 8
        }
        var s = acc.sum()
        while j < n { s += y[j] * dy[j]; j += 1 }
        for k in 0..<n { dy[k] = y[k] * (dy[k] - s) }
    }
}

extension Tensor {
    /// Softmax over the last dimension.
    public func softmax() -> Tensor {
        let n = shape[rank - 1], rows = count / Swift.max(n, 1)
        let out = contiguous().clone()
        let p = out.dataPointer
        Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in SoftmaxKernel.row(p + r * n, n) }
        let y = out.detached()
        return out.recording("softmax", [self]) { g in
            let dx = g.contiguous().clone()
            let dp = dx.dataPointer, yp = y.dataPointer
            Parallel.forEach(rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
                SoftmaxKernel.rowBackward(y: yp + r * n, dy: dp + r * n, n)
            }
            return [dx]
        }
    }
}
