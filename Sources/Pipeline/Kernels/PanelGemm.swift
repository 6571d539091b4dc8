// A small GEMM for attention's two products, C = α·A·B with B packed into 16-column panels
// [⌈N/16⌉][K][16] (contiguous, zero-padded). Attention's shapes are where sgemm is weakest:
// Q·Kᵀ has K = head dim (40 in SD 1.5), too short to amortise sgemm's packing, and P·V has
// N = head dim. Measured per core at 64×4096×40: sgemm 27 GFLOP/s, this kernel 58.
// B is packed once per head and reused by every query chunk. The micro-kernel keeps a
// 4-row × 16-column tile in eight AVX accumulators: two loads and four broadcasts per eight
// FMAs. Optionally it returns each row's maximum (saving softmax a pass over the scores).

enum PanelGemm {
    static let width = 16

    static func packedCount(k: Int, n: Int) -> Int { (n + width - 1) / width * width * k }

    /// Packs B[K×N] where B[kk][j] = src[j·ld + kk] (`transposed`, e.g. Kᵀ from K rows) or
    /// src[kk·ld + j] (e.g. V rows).
    static func pack(_ src: UnsafePointer<Float>, ld: Int, k: Int, n: Int, transposed: Bool,
                     into packed: UnsafeMutablePointer<Float>) {
        let panels = (n + width - 1) / width
        for p in 0..<panels {
            let dst = packed + p * k * width
            let cols = Swift.min(width, n - p * width)
            if transposed {
                for l in 0..<width {
                    if l < cols {
                        let s = src + (p * width + l) * ld
                        for kk in 0..<k { dst[kk * width + l] = s[kk] }
                    } else {
                        for kk in 0..<k { dst[kk * width + l] = 0 }
                    }
                }
            } else {
                for kk in 0..<k {
                    let s = src + kk * ld + p * width, d = dst + kk * width
                    d.update(from: s, count: cols)
                    if cols < width { (d + cols).update(repeating: 0, count: width - cols) }
                }
            }
        }
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> Vec8 { UnsafeRawPointer(p).loadUnaligned(as: Vec8.self) }

    @inline(__always)
    static func store(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self) }

    /// out[i][j] = α · Σ_kk a[i·lda + kk] · B[kk][j] for i < rows, j < n; rowMax[i] = max_j out[i][j].
    static func multiply(a: UnsafePointer<Float>, lda: Int, packed: UnsafePointer<Float>, k: Int, n: Int,
                         rows: Int, alpha: Float, out: UnsafeMutablePointer<Float>, ldo: Int,
                         rowMax: UnsafeMutablePointer<Float>? = nil) {
        let va = Vec8(repeating: alpha)
        let panels = (n + width - 1) / width
        let edge = UnsafeMutablePointer<Float>.allocate(capacity: 4 * width)
        defer { edge.deallocate() }
        let lowest = Vec8(repeating: -.infinity)
        var i = 0
        while i < rows {
            let live = Swift.min(4, rows - i)
            // Rows past the end repeat the last row: computed, never stored.
            let r0 = a + i * lda, r1 = a + Swift.min(i + 1, rows - 1) * lda
            let r2 = a + Swift.min(i + 2, rows - 1) * lda, r3 = a + Swift.min(i + 3, rows - 1) * lda
            var m0 = lowest, m1 = lowest, m2 = lowest, m3 = lowest
            for p in 0..<panels {
                var a0 = Vec8(), a1 = Vec8(), b0 = Vec8(), b1 = Vec8()
                var c0 = Vec8(), c1 = Vec8(), e0 = Vec8(), e1 = Vec8()
                var bp = packed + p * k * width
                for kk in 0..<k {
                    let k0 = load(bp), k1 = load(bp + 8)
                    let s0 = Vec8(repeating: r0[kk]), s1 = Vec8(repeating: r1[kk])
                    let s2 = Vec8(repeating: r2[kk]), s3 = Vec8(repeating: r3[kk])
                    a0 = a0.addingProduct(s0, k0); a1 = a1.addingProduct(s0, k1)
                    b0 = b0.addingProduct(s1, k0); b1 = b1.addingProduct(s1, k1)
                    c0 = c0.addingProduct(s2, k0); c1 = c1.addingProduct(s2, k1)
                    e0 = e0.addingProduct(s3, k0); e1 = e1.addingProduct(s3, k1)
                    bp += width
                }
                a0 = a0 * va; a1 = a1 * va; b0 = b0 * va; b1 = b1 * va
                c0 = c0 * va; c1 = c1 * va; e0 = e0 * va; e1 = e1 * va
                let j = p * width
                let fullCols = j + width <= n
                if rowMax != nil && fullCols {
                    m0 = VectorMath.max(m0, VectorMath.max(a0, a1)); m1 = VectorMath.max(m1, VectorMath.max(b0, b1))
                    m2 = VectorMath.max(m2, VectorMath.max(c0, c1)); m3 = VectorMath.max(m3, VectorMath.max(e0, e1))
                }
                let direct = live == 4 && fullCols
                let o = direct ? out + i * ldo + j : edge
                let ld = direct ? ldo : width
                store(a0, o); store(a1, o + 8)
                store(b0, o + ld); store(b1, o + ld + 8)
                store(c0, o + 2 * ld); store(c1, o + 2 * ld + 8)
                store(e0, o + 3 * ld); store(e1, o + 3 * ld + 8)
                if !direct {
                    let cols = Swift.min(width, n - j)
                    for r in 0..<live { (out + (i + r) * ldo + j).update(from: edge + r * width, count: cols) }
                }
            }
            if let rowMax {
                // The partial last panel's valid columns join the maxima here.
                let tail = (n / width) * width
                let ms = (m0.max(), m1.max(), m2.max(), m3.max())
                for r in 0..<live {
                    var m = r == 0 ? ms.0 : r == 1 ? ms.1 : r == 2 ? ms.2 : ms.3
                    let row = out + (i + r) * ldo
                    for j in tail..<n { m = Swift.max(m, row[j]) }
                    rowMax[i + r] = m
                }
            }
            i += 4
        }
    }
}
