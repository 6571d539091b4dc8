// conv2d NCHW forward and backward as GEMMs over im2col columns. 1×1 stride-1 convs skip
// im2col (the input already is the column matrix). Small images are batched into one wide
// column matrix so GEMM sees N = images·H·W instead of tiny N (the default model runs at
// 16×16 latents, where per-image GEMMs waste most of the machine).

enum Conv2dKernel {
    /// Images per GEMM: enough columns (~2048) to keep sgemm efficient, bounded memory.
    /// From 1024 pixels up one image is wide enough, and GEMM writes straight into the
    /// output (measured at 640 ch @ 32×32: 150 → 120 ms).
    static func group(_ g: ConvGeometry, batch: Int) -> Int {
        g.n >= 1024 ? 1 : Swift.max(1, Swift.min(batch, 2048 / Swift.max(g.n, 1)))
    }

    static func isPointwise(_ g: ConvGeometry) -> Bool {
        g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1 && g.padH == 0 && g.padW == 0
    }

    /// Column-matrix budget (floats): large images are convolved in bands of output rows so
    /// im2col never needs more than this (a 256-channel 3×3 conv at 512×512 would otherwise
    /// build a 2.4 GB matrix).
    static let defaultColumnBudget = 1 << 23
    nonisolated(unsafe) static var columnBudget = defaultColumnBudget

    /// Output rows per band for one image.
    static func bandRows(_ g: ConvGeometry) -> Int { Swift.max(1, Swift.min(g.outH, columnBudget / Swift.max(g.k * g.outW, 1))) }

    /// out [B, Cout, N] = W [Cout, K] · col(x) + bias.
    static func forward(x: UnsafePointer<Float>, batch: Int, _ g: ConvGeometry,
                        weight: UnsafePointer<Float>, cout: Int, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>) {
        let k = g.k, n = g.n, inImage = g.channels * g.height * g.width
        let pointwise = isPointwise(g)
        let gsize = group(g, batch: batch)
        if gsize == 1 {
            // One image at a time, in bands of output rows.
            let band = bandRows(g)
            let cols = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * band * g.outW)
            defer { cols?.deallocate() }
            for b in 0..<batch {
                let xb = x + b * inImage, ob = out + b * cout * n
                if let bias { for co in 0..<cout { (ob + co * n).update(repeating: bias[co], count: n) } }
                if pointwise {
                    BLAS.sgemm(transA: false, transB: false, m: cout, n: n, k: k, a: weight, lda: k, b: xb, ldb: n,
                               beta: bias == nil ? 0 : 1, c: ob, ldc: n)
                    continue
                }
                var y0 = 0
                while y0 < g.outH {
                    let y1 = Swift.min(g.outH, y0 + band), bn = (y1 - y0) * g.outW
                    Im2Col.fill(xb, g, col: cols!, ld: bn, rows: y0..<y1)
                    BLAS.sgemm(transA: false, transB: false, m: cout, n: bn, k: k, a: weight, lda: k, b: cols!, ldb: bn,
                               beta: bias == nil ? 0 : 1, c: ob + y0 * g.outW, ldc: n)
                    y0 = y1
                }
            }
            return
        }
        // Small images: several side by side in one column matrix, one wide GEMM.
        let cols = UnsafeMutablePointer<Float>.allocate(capacity: k * n * gsize)
        let tmp = UnsafeMutablePointer<Float>.allocate(capacity: cout * n * gsize)
        defer { cols.deallocate(); tmp.deallocate() }
        var b0 = 0
        while b0 < batch {
            let gb = Swift.min(gsize, batch - b0)
            let ld = n * gb
            if pointwise {
                for i in 0..<gb { for c in 0..<k { (cols + c * ld + i * n).update(from: x + (b0 + i) * inImage + c * n, count: n) } }
            } else {
                Im2Col.fill(batch: x + b0 * inImage, count: gb, g, col: cols, ld: ld)
            }
            if let bias { for co in 0..<cout { (tmp + co * ld).update(repeating: bias[co], count: ld) } }
            BLAS.sgemm(transA: false, transB: false, m: cout, n: ld, k: k, a: weight, lda: k, b: cols, ldb: ld,
                       beta: bias == nil ? 0 : 1, c: tmp, ldc: ld)
            // [Cout, gb·N] → [gb, Cout, N]
            for i in 0..<gb {
                for co in 0..<cout { (out + ((b0 + i) * cout + co) * n).update(from: tmp + co * ld + i * n, count: n) }
            }
            b0 += gb
        }
    }

    /// Gradients for x (accumulated into dx, which must start zeroed), weight and bias.
    static func backward(x: UnsafePointer<Float>, batch: Int, _ g: ConvGeometry,
                         weight: UnsafePointer<Float>, cout: Int, gradOut: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                         db: UnsafeMutablePointer<Float>?) {
        let k = g.k, n = g.n, inImage = g.channels * g.height * g.width
        let pointwise = isPointwise(g)
        let band = pointwise ? g.outH : bandRows(g)
        let col = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * band * g.outW)
        defer { col?.deallocate() }
        if let db {
            for co in 0..<cout {
                var s: Float = 0
                for b in 0..<batch { s += Tensor.rowSum(UnsafeMutablePointer(mutating: gradOut + (b * cout + co) * n), n) }
                db[co] = s
            }
        }
        if let dw { dw.update(repeating: 0, count: cout * k) }
        let gsize = group(g, batch: batch)
        if gsize > 1 && !pointwise {
            // Small images, as in forward: gb images side by side, so both GEMMs are wide
            // (dW = dY·colᵀ over gb·N columns; dcol = Wᵀ·dY), then col2im per image.
            let cols = UnsafeMutablePointer<Float>.allocate(capacity: k * n * gsize)
            let dy = UnsafeMutablePointer<Float>.allocate(capacity: cout * n * gsize)
            defer { cols.deallocate(); dy.deallocate() }
            var b0 = 0
            while b0 < batch {
                let gb = Swift.min(gsize, batch - b0), ld = n * gb
                for i in 0..<gb { for co in 0..<cout { (dy + co * ld + i * n).update(from: gradOut + ((b0 + i) * cout + co) * n, count: n) } }
                if let dw {
                    Im2Col.fill(batch: x + b0 * inImage, count: gb, g, col: cols, ld: ld)
                    BLAS.sgemm(transA: false, transB: true, m: cout, n: k, k: ld, a: dy, lda: ld, b: cols, ldb: ld, beta: 1, c: dw, ldc: k)
                }
                if let dx {
                    BLAS.sgemm(transA: true, transB: false, m: k, n: ld, k: cout, a: weight, lda: k, b: dy, ldb: ld, c: cols, ldc: ld)
                    for i in 0..<gb { Im2Col.accumulate(cols + i * n, ld: ld, g, into: dx + (b0 + i) * inImage) }
                }
                b0 += gb
            }
            return
        }
        for b in 0..<batch {
            let gb = gradOut + b * cout * n
            let xb = x + b * inImage
            if pointwise {
                // dW += dY[Cout×N] · xᵀ[N×K];  dx += Wᵀ[K×Cout] · dY
                if let dw { BLAS.sgemm(transA: false, transB: true, m: cout, n: k, k: n, a: gb, lda: n, b: xb, ldb: n, beta: 1, c: dw, ldc: k) }
                if let dx { BLAS.sgemm(transA: true, transB: false, m: k, n: n, k: cout, a: weight, lda: k, b: gb, ldb: n, beta: 1, c: dx + b * inImage, ldc: n) }
                continue
            }
            var y0 = 0
            while y0 < g.outH {
                let y1 = Swift.min(g.outH, y0 + band), bn = (y1 - y0) * g.outW
                let gband = gb + y0 * g.outW
                if let dw {
                    Im2Col.fill(xb, g, col: col!, ld: bn, rows: y0..<y1)
                    BLAS.sgemm(transA: false, transB: true, m: cout, n: k, k: bn, a: gband, lda: n, b: col!, ldb: bn, beta: 1, c: dw, ldc: k)
                }
                if let dx {
                    // dcol = Wᵀ[K×Cout] · dY[Cout×band], then scatter-add into dx
                    BLAS.sgemm(transA: true, transB: false, m: k, n: bn, k: cout, a: weight, lda: k, b: gband, ldb: n, c: col!, ldc: bn)
                    Im2Col.accumulate(col!, ld: bn, g, into: dx + b * inImage, rows: y0..<y1)
                }
                y0 = y1
            }
        }
    }
}
