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
        let yr = rows ?? 0..<g.outH
        if isSame3x3(g) && yr == 0..<g.outH {
            Parallel.forEach(g.channels) { c in fillSame3x3(channel: c, x, g, col: col, ld: ld) }
            return
        }
        Parallel.forEach(g.k, grain: Swift.max(1, 4096 / Swift.max(yr.count * g.outW, 1))) { row in
            fillRow(row, x, g, dst: col + row * ld, rows: yr)
        }
    }

    /// Fills the column matrix of `count` images side by side (image i's columns start at
    /// i·N in every row), in one parallel pass over rows: small convs (16×16 latents) would
    /// otherwise pay a thread dispatch per image per layer.
    static func fill(batch x: UnsafePointer<Float>, count: Int, _ g: ConvGeometry, col: UnsafeMutablePointer<Float>, ld: Int) {
        let n = g.n, inImage = g.channels * g.height * g.width, yr = 0..<g.outH
        if isSame3x3(g) {
            Parallel.forEach(g.channels, grain: Swift.max(1, 512 / Swift.max(count * n, 1))) { c in
                for i in 0..<count { fillSame3x3(channel: c, x + i * inImage, g, col: col + i * n, ld: ld) }
            }
            return
        }
        Parallel.forEach(g.k, grain: Swift.max(1, 4096 / Swift.max(count * n, 1))) { row in
            for i in 0..<count { fillRow(row, x + i * inImage, g, dst: col + row * ld + i * n, rows: yr) }
        }
    }

    /// 3×3, stride 1, padding 1: the UNet's and VAE's convs (most of a generation's im2col).
    static func isSame3x3(_ g: ConvGeometry) -> Bool {
        g.kernelH == 3 && g.kernelW == 3 && g.strideH == 1 && g.strideW == 1 && g.padH == 1 && g.padW == 1
    }

    /// The nine rows of channel `c`: each source row is read once and written three times
    /// (shifted left, as is, shifted right), with no per-element index arithmetic. For the
    /// 8–64-float rows of small images this is ~3× faster than the general row fill, whose
    /// per-row setup and tiny memset/memmove calls dominate there.
    @inline(__always)
    static func fillSame3x3(channel c: Int, _ x: UnsafePointer<Float>, _ g: ConvGeometry, col: UnsafeMutablePointer<Float>, ld: Int) {
        let h = g.height, w = g.width
        let src = x + c * h * w
        for ky in 0..<3 {
            let d0 = col + (c * 9 + ky * 3) * ld, d1 = d0 + ld, d2 = d1 + ld
            for oy in 0..<h {
                let iy = oy - 1 + ky
                let o = oy * w
                if iy < 0 || iy >= h {
                    for j in 0..<w { d0[o + j] = 0; d1[o + j] = 0; d2[o + j] = 0 }
                    continue
                }
                let s = src + iy * w
                d0[o] = 0
                for j in 1..<w { d0[o + j] = s[j - 1] }
                for j in 0..<w { d1[o + j] = s[j] }
                for j in 0..<(w - 1) { d2[o + j] = s[j + 1] }
                d2[o + w - 1] = 0
            }
        }
    }

    @inline(__always)
    static func fillRow(_ row: Int, _ x: UnsafePointer<Float>, _ g: ConvGeometry, dst: UnsafeMutablePointer<Float>, rows yr: Range<Int>) {
        let ow = g.outW, h = g.height, w = g.width
        let c = row / (g.kernelH * g.kernelW)
        let ky = (row / g.kernelW) % g.kernelH, kx = row % g.kernelW
        let src = x + c * h * w
        for oy in yr {
            let iy = oy * g.strideH - g.padH + ky
            let d = dst + (oy - yr.lowerBound) * ow
            if iy < 0 || iy >= h { for j in 0..<ow { d[j] = 0 }; continue }
            let srow = src + iy * w
            if g.strideW == 1 {
                // valid ox range: 0 ≤ ox - padW + kx < w
                let shift = kx - g.padW
                let lo = Swift.min(ow, Swift.max(0, -shift))
                let hi = Swift.max(lo, Swift.min(ow, w - shift))
                for j in 0..<lo { d[j] = 0 }
                // Plain loops: rows of 8–64 floats, where a memmove call costs more than the copy.
                if hi - lo <= 64 { for j in lo..<hi { d[j] = srow[j + shift] } } else { (d + lo).update(from: srow + lo + shift, count: hi - lo) }
                for j in hi..<ow { d[j] = 0 }
            } else {
                for ox in 0..<ow {
                    let ix = ox * g.strideW - g.padW + kx
                    d[ox] = (ix >= 0 && ix < w) ? srow[ix] : 0
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
        if isSame3x3(g) {
            // The transpose of fillSame3x3: three shifted row adds per source row.
            Parallel.forEach(g.channels) { c in
                let dst = dx + c * h * w
                for ky in 0..<3 {
                    let s0 = col + (c * 9 + ky * 3) * ld, s1 = s0 + ld, s2 = s1 + ld
                    for oy in yr {
                        let iy = oy - 1 + ky
                        if iy < 0 || iy >= h { continue }
                        let o = (oy - yr.lowerBound) * w, drow = dst + iy * w
                        for ix in 0..<w { drow[ix] += s1[o + ix] }
                        for ix in 0..<(w - 1) { drow[ix] += s0[o + ix + 1] }
                        for ix in 1..<w { drow[ix] += s2[o + ix - 1] }
                    }
                }
            }
            return
        }
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
