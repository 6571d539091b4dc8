// im2col / col2im for NCHW convolution. Row (c, ky, kx) of the column matrix holds input
// channel c shifted by (ky, kx) at every output position, so conv = W[Cout×K] · col[K×N].
// `ld` lets several images share one column matrix side by side (batched small convs).

struct ConvGeometry {
    let channels: Int, height: Int, width: Int
    let kernelH: Int, kernelW: Int
    let strideH: Int, strideW: Int
    let padH: Int, padW: Int
    var outH: Int { (height + 2 * padH - kernelH) / strideH + 1 }
    var outW: Int { (width + 2 * padW - kernelW) / strideW + 1 }
    var k: Int { channels * kernelH * kernelW }
    var n: Int { outH * outW }
}

enum Im2Col {
    /// Fills col[k][n] for one image `x` (C×H×W dense), for output rows `rows` (all by
    /// default): column n is output pixel (rows.lowerBound·W_out + n).
    static func fill(_ x: UnsafePointer<Float>, _ g: ConvGeometry,
                     col: UnsafeMutablePointer<Float>, ld: Int, rows: Range<Int>? = nil) {
        let ow = g.outW, h = g.height, w = g.width
        let yr = rows ?? 0..<g.outH
        Parallel.forEach(g.k, grain: Swift.max(1, 4096 / Swift.max(yr.count * ow, 1))) { row in
            let c = row / (g.kernelH * g.kernelW)
            let ky = (row / g.kernelW) % g.kernelH, kx = row % g.kernelW
            let src = x + c * h * w
            let dst = col + row * ld
            for oy in yr {
                let iy = oy * g.strideH - g.padH + ky
                let d = dst + (oy - yr.lowerBound) * ow
                if iy < 0 || iy >= h { d.update(repeating: 0, count: ow); continue }
                let srow = src + iy * w
                if g.strideW == 1 {
                    // valid ox range: 0 ≤ ox - padW + kx < w
                    let shift = kx - g.padW
                    let lo = Swift.min(ow, Swift.max(0, -shift))
                    let hi = Swift.max(lo, Swift.min(ow, w - shift))
                    if lo > 0 { d.update(repeating: 0, count: lo) }
                    if hi > lo { (d + lo).update(from: srow + lo + shift, count: hi - lo) }
                    if hi < ow { (d + hi).update(repeating: 0, count: ow - hi) }
                } else {
                    for ox in 0..<ow {
                        let ix = ox * g.strideW - g.padW + kx
                        d[ox] = (ix >= 0 && ix < w) ? srow[ix] : 0
                    }
                }
            }
        }
    }

    /// Adds col[k][n] (output rows `rows`) back into dx (C×H×W dense, accumulated).
    /// Parallel over channels so no two threads write the same pixel.
    static func accumulate(_ col: UnsafePointer<Float>, ld: Int, _ g: ConvGeometry,
                           into dx: UnsafeMutablePointer<Float>, rows: Range<Int>? = nil) {
        let ow = g.outW, h = g.height, w = g.width
        let yr = rows ?? 0..<g.outH
        let perC = g.kernelH * g.kernelW
        Parallel.forEach(g.channels) { c in
            let dst = dx + c * h * w
            for r in 0..<perC {
                let ky = r / g.kernelW, kx = r % g.kernelW
                let src = col + (c * perC + r) * ld
                for oy in yr {
                    let iy = oy * g.strideH - g.padH + ky
                    if iy < 0 || iy >= h { continue }
                    let s = src + (oy - yr.lowerBound) * ow, drow = dst + iy * w
                    for ox in 0..<ow {
                        let ix = ox * g.strideW - g.padW + kx
                        if ix >= 0 && ix < w { drow[ix] += s[ox] }
                    }
                }
            }
        }
    }
}
