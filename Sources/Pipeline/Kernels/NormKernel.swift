// Group/layer normalisation in two passes over memory: one for the statistics (sum and sum
// of squares, shifted by the row's first element against cancellation), one that writes
// (x − μ)·rstd·γ + β as a single multiply-add per element. A "row" is one (batch, group):
// `segments` channels of `spatial` elements each; LayerNorm is the case spatial = 1.
// Backward recomputes x̂ from x, μ, rstd instead of storing it.

struct NormLayout {
    let rows: Int          // batch · groups
    let groups: Int        // groups per sample (row r is group r % groups)
    let segments: Int      // channels per group
    let spatial: Int       // elements per channel
    var n: Int { segments * spatial }
}

enum NormKernel {
    static func forward(_ x: UnsafePointer<Float>, _ L: NormLayout, eps: Float,
                        weight: UnsafePointer<Float>?, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        rstd: UnsafeMutablePointer<Float>) {
        let n = L.n
        Parallel.forEach(L.rows, grain: Swift.max(1, 16384 / Swift.max(n, 1))) { r in
            let p = x + r * n
            let shift = p[0]
            let vs = Vec8(repeating: shift)
            var s1 = Vec8(), s2 = Vec8(), j = 0
            while j + 8 <= n {
                let d = UnsafeRawPointer(p + j).loadUnaligned(as: Vec8.self) - vs
                s1 += d; s2 = s2.addingProduct(d, d); j += 8
            }
            var a = s1.sum(), b = s2.sum()
            while j < n { let d = p[j] - shift; a += d; b += d * d; j += 1 }
            let md = a / Float(n)
            let variance = Swift.max(b / Float(n) - md * md, 0)
            let m = shift + md, rs = 1 / (variance + eps).squareRoot()
            mean[r] = m; rstd[r] = rs
            let c0 = (r % L.groups) * L.segments
            let o = out + r * n
            if L.spatial == 1 {
                // per-element affine (LayerNorm)
                var k = 0
                let vm = Vec8(repeating: m), vr = Vec8(repeating: rs)
                while k + 8 <= n {
                    var y = (UnsafeRawPointer(p + k).loadUnaligned(as: Vec8.self) - vm) * vr
                    if let weight { y = y * UnsafeRawPointer(weight + c0 + k).loadUnaligned(as: Vec8.self) }
                    if let bias { y = y + UnsafeRawPointer(bias + c0 + k).loadUnaligned(as: Vec8.self) }
                    UnsafeMutableRawPointer(o + k).storeBytes(of: y, as: Vec8.self); k += 8
                }
                while k < n {
                    var y = (p[k] - m) * rs
                    if let weight { y *= weight[c0 + k] }
                    if let bias { y += bias[c0 + k] }
                    o[k] = y; k += 1
                }
            } else {
                for s in 0..<L.segments {
                    let scale = rs * (weight?[c0 + s] ?? 1)
                    let offset = (bias?[c0 + s] ?? 0) - m * scale
                    let vsc = Vec8(repeating: scale), vof = Vec8(repeating: offset)
                    let ps = p + s * L.spatial, os = o + s * L.spatial
                    var k = 0
                    while k + 8 <= L.spatial {
                        let y = vof.addingProduct(UnsafeRawPointer(ps + k).loadUnaligned(as: Vec8.self), vsc)
                        UnsafeMutableRawPointer(os + k).storeBytes(of: y, as: Vec8.self); k += 8
                    }
                    while k < L.spatial { os[k] = ps[k] * scale + offset; k += 1 }
                }
            }
        }
    }

    /// dx (written), and per-row partial sums for γ and β: dwRow[r][s] = Σ dy·x̂,
    /// dbRow[r][s] = Σ dy over each channel segment of row r.
    static func backward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, _ L: NormLayout,
                         mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>?,
                         dx: UnsafeMutablePointer<Float>, dwRow: UnsafeMutablePointer<Float>,
                         dbRow: UnsafeMutablePointer<Float>) {
        let n = L.n
        Parallel.forEach(L.rows, grain: Swift.max(1, 8192 / Swift.max(n, 1))) { r in
            let p = x + r * n, g = dy + r * n, o = dx + r * n
            let m = mean[r], rs = rstd[r]
            let c0 = (r % L.groups) * L.segments
            // Σ dx̂ and Σ dx̂·x̂ with dx̂ = dy·γ; per-segment sums for the affine grads.
            var s1: Float = 0, s2: Float = 0
            for s in 0..<L.segments {
                let w = weight?[c0 + s] ?? 1
                var sdy: Float = 0, sdyx: Float = 0
                for k in (s * L.spatial)..<((s + 1) * L.spatial) {
                    let xh = (p[k] - m) * rs
                    sdy += g[k]; sdyx += g[k] * xh
                }
                dwRow[r * L.segments + s] = sdyx
                dbRow[r * L.segments + s] = sdy
                s1 += w * sdy; s2 += w * sdyx
            }
            let m1 = s1 / Float(n), m2 = s2 / Float(n)
            for s in 0..<L.segments {
                let w = weight?[c0 + s] ?? 1
                for k in (s * L.spatial)..<((s + 1) * L.spatial) {
                    let xh = (p[k] - m) * rs
                    o[k] = rs * (g[k] * w - m1 - xh * m2)
                }
            }
        }
    }
}
