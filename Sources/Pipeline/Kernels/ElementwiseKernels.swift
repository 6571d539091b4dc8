// Broadcasting elementwise kernels. Operands are expanded to the output shape (stride-0
// dims), adjacent dims that are contiguous in every operand are merged, and the innermost
// run is a SIMD loop specialised for unit or zero stride. Each op is a type conforming to
// BinaryOp/UnaryOp so the generic kernels specialise without closure calls per element.

public protocol BinaryOp {
    static func apply(_ a: Vec8, _ b: Vec8) -> Vec8
    static func apply(_ a: Float, _ b: Float) -> Float
}

public protocol UnaryOp {
    static func apply(_ x: Vec8) -> Vec8
    static func apply(_ x: Float) -> Float
}

enum AddOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 { a + b }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b }
}
enum SubOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 { a - b }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b }
}
enum MulOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 { a * b }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b }
}
enum DivOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 { a / b }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b }
}
enum MaxOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 { VectorMath.max(a, b) }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { Swift.max(a, b) }
}
enum EqualMaskOp: BinaryOp {
    @inline(__always) static func apply(_ a: Vec8, _ b: Vec8) -> Vec8 {
        Vec8(repeating: 0).replacing(with: 1, where: a .== b)
    }
    @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a == b ? 1 : 0 }
}

public enum ElementwiseKernels {
    /// Output shape of broadcasting `a` with `b` (NumPy rules).
    public static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
        let r = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            precondition(da == db || da == 1 || db == 1, "shapes \(a) and \(b) do not broadcast")
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Strides of `t` viewed at `shape` (0 on broadcast dims).
    static func broadcastStrides(_ t: Tensor, to shape: [Int]) -> [Int] {
        let lead = shape.count - t.rank
        var st = [Int](repeating: 0, count: shape.count)
        for i in 0..<t.rank where t.shape[i] == shape[lead + i] && t.shape[i] != 1 {
            st[lead + i] = t.strides[i]
        }
        return st
    }

    /// Merges dims that are contiguous with their successor in every operand.
    static func coalesce(_ shape: [Int], _ strides: [[Int]]) -> ([Int], [[Int]]) {
        var s: [Int] = []
        var st: [[Int]] = Array(repeating: [], count: strides.count)
        for i in 0..<shape.count where shape[i] != 1 {
            if !s.isEmpty, (0..<strides.count).allSatisfy({ st[$0].last! == strides[$0][i] * shape[i] }) {
                s[s.count - 1] *= shape[i]
                for k in 0..<strides.count { st[k][st[k].count - 1] = strides[k][i] }
            } else {
                s.append(shape[i])
                for k in 0..<strides.count { st[k].append(strides[k][i]) }
            }
        }
        if s.isEmpty { return ([1], strides.map { _ in [0] }) }
        return (s, st)
    }

    public static func binary<Op: BinaryOp>(_ op: Op.Type, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(a.shape, b.shape)
        let out = Tensor(uninitialized: shape)
        let n = out.count
        if n == 0 { return out }
        let (s, st) = coalesce(shape, [broadcastStrides(a, to: shape), broadcastStrides(b, to: shape)])
        let r = s.count
        let inner = s[r - 1], ia = st[0][r - 1], ib = st[1][r - 1]
        let rows = n / inner
        let pa = a.dataPointer, pb = b.dataPointer, po = out.dataPointer
        Parallel.forChunks(rows, grain: Swift.max(1, 32768 / inner)) { range in
            for row in range {
                // offsets of this row in a and b
                var rem = row, oa = 0, ob = 0
                var k = r - 2
                while k >= 0 {
                    let i = rem % s[k]; rem /= s[k]
                    oa += i * st[0][k]; ob += i * st[1][k]
                    k -= 1
                }
                runRow(Op.self, pa + oa, ia, pb + ob, ib, po + row * inner, inner)
            }
        }
        return out
    }

    @inline(__always)
    static func runRow<Op: BinaryOp>(_ op: Op.Type, _ a: UnsafeMutablePointer<Float>, _ sa: Int,
                                     _ b: UnsafeMutablePointer<Float>, _ sb: Int,
                                     _ o: UnsafeMutablePointer<Float>, _ n: Int) {
        var j = 0
        if sa == 1 && sb == 1 {
            while j + 8 <= n {
                let va = UnsafeRawPointer(a + j).loadUnaligned(as: Vec8.self)
                let vb = UnsafeRawPointer(b + j).loadUnaligned(as: Vec8.self)
                UnsafeMutableRawPointer(o + j).storeBytes(of: Op.apply(va, vb), as: Vec8.self)
                j += 8
            }
        } else if sa == 1 && sb == 0 {
            let vb = Vec8(repeating: b[0])
            while j + 8 <= n {
                let va = UnsafeRawPointer(a + j).loadUnaligned(as: Vec8.self)
                UnsafeMutableRawPointer(o + j).storeBytes(of: Op.apply(va, vb), as: Vec8.self)
                j += 8
            }
        } else if sa == 0 && sb == 1 {
            let va = Vec8(repeating: a[0])
            while j + 8 <= n {
                let vb = UnsafeRawPointer(b + j).loadUnaligned(as: Vec8.self)
                UnsafeMutableRawPointer(o + j).storeBytes(of: Op.apply(va, vb), as: Vec8.self)
                j += 8
            }
        }
        while j < n { o[j] = Op.apply(a[j * sa], b[j * sb]); j += 1 }
    }

    public static func unary<Op: UnaryOp>(_ op: Op.Type, _ x: Tensor) -> Tensor {
        let src = x.contiguous()
        let out = Tensor(uninitialized: x.shape)
        map(Op.self, src.dataPointer, out.dataPointer, x.count)
        return out
    }

    public static func map<Op: UnaryOp>(_ op: Op.Type, _ src: UnsafeMutablePointer<Float>,
                                        _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        Parallel.forChunks(n / 8, grain: 4096) { range in
            for c in range {
                let v = UnsafeRawPointer(src + c * 8).loadUnaligned(as: Vec8.self)
                UnsafeMutableRawPointer(dst + c * 8).storeBytes(of: Op.apply(v), as: Vec8.self)
            }
        }
        var j = (n / 8) * 8
        while j < n { dst[j] = Op.apply(src[j]); j += 1 }
    }

    /// Writes dense `src` into the (possibly strided) view `dst`.
    static func scatter(_ src: UnsafeMutablePointer<Float>, into dst: Tensor) {
        let (s, st) = coalesce(dst.shape, [dst.strides])
        let r = s.count, inner = s[r - 1], si = st[0][r - 1]
        let rows = dst.count / inner
        let base = dst.dataPointer
        for row in 0..<rows {
            var rem = row, o = 0
            var k = r - 2
            while k >= 0 { o += (rem % s[k]) * st[0][k]; rem /= s[k]; k -= 1 }
            let d = base + o, sp = src + row * inner
            for j in 0..<inner { d[j * si] = sp[j] }
        }
    }
}
