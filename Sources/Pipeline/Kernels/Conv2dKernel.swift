// conv2d NCHW forward and backward as GEMMs over im2col columns. 1×1 stride-1 convs skip
// im2col (the input already is the column matrix). Small images are batched into one wide
// column matrix so GEMM sees N = images·H·W instead of tiny N (the default model runs at
// 16×16 latents, where per-image GEMMs waste most of the machine).

enum Conv2dKernel {
    /// Images per GEMM: enough columns (~2048) to keep sgemm efficient, bounded memory.
    static func group(_ g: ConvGeometry, batch: Int) -> Int {
        Swift.max(1, Swift.min(batch, 2048 / Swift.max(g.n, 1)))
    }

    static func isPointwise(_ g: ConvGeometry) -> Bool {
        g.kernelH == 1 && g.kernelW == 1 && g.strideH == 1 && g.strideW == 1 && g.padH == 0 && g.padW == 0
    }

    /// out [B, Cout, N] = W [Cout, K] · col(x) + bias.
    static func forward(x: UnsafePointer<Float>, batch: Int, _ g: ConvGeometry,
                        weight: UnsafePointer<Float>, cout: Int, bias: UnsafePointer<Float>?,
                        out: UnsafeMutablePointer<Float>) {
        let k = g.k, n = g.n, inImage = g.channels * g.height * g.width
        let gsize = group(g, batch: batch)
        let pointwise = isPointwise(g)
        let cols = (pointwise && gsize == 1) ? nil : UnsafeMutablePointer<Float>.allocate(capacity: k * n * gsize)
        let tmp = gsize > 1 ? UnsafeMutablePointer<Float>.allocate(capacity: cout * n * gsize) : nil
        defer { cols?.deallocate(); tmp?.deallocate() }
        var b0 = 0
        while b0 < batch {
            let gb = Swift.min(gsize, batch - b0)
            let ld = n * gb
            // Column matrix for this group of images.
            let colPtr: UnsafePointer<Float>
            if let cols {
                for i in 0..<gb {
                    let xi = x + (b0 + i) * inImage
                    if pointwise {
                        for c in 0..<k { (cols + c * ld + i * n).update(from: xi + c * n, count: n) }
                    } else {
                        Im2Col.fill(xi, g, col: cols + i * n, ld: ld)
                    }
                }
                colPtr = UnsafePointer(cols)
            } else {
                colPtr = x + b0 * inImage
            }
            let dst = tmp ?? (out + b0 * cout * n)
            if let bias {
                for co in 0..<cout { (dst + co * ld).update(repeating: bias[co], count: ld) }
            }
            BLAS.sgemm(transA: false, transB: false, m: cout, n: ld, k: k,
                       a: weight, lda: k, b: colPtr, ldb: ld,
                       beta: bias == nil ? 0 : 1, c: dst, ldc: ld)
            if let tmp {
                // [Cout, gb·N] → [gb, Cout, N]
                for i in 0..<gb {
                    for co in 0..<cout {
                        (out + ((b0 + i) * cout + co) * n).update(from: tmp + co * ld + i * n, count: n)
                    }
                }
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
        let col = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        defer { col.deallocate() }
        if let db {
            for co in 0..<cout {
                var s: Float = 0
                for b in 0..<batch { s += Tensor.rowSum(UnsafeMutablePointer(mutating: gradOut + (b * cout + co) * n), n) }
                db[co] = s
            }
        }
        if let dw { dw.update(repeating: 0, count: cout * k) }
        for b in 0..<batch {
            let gb = gradOut + b * cout * n
            let xb = x + b * inImage
            if let dw {
                let colB: UnsafePointer<Float>
                if pointwise { colB = xb } else { Im2Col.fill(xb, g, col: col, ld: n); colB = UnsafePointer(col) }
                // dW += dY[Cout×N] · colᵀ[N×K]
                BLAS.sgemm(transA: false, transB: true, m: cout, n: k, k: n,
                           a: gb, lda: n, b: colB, ldb: n, beta: 1, c: dw, ldc: k)
            }
            if let dx {
                let dxb = dx + b * inImage
                if pointwise {
                    BLAS.sgemm(transA: true, transB: false, m: k, n: n, k: cout,
                               a: weight, lda: k, b: gb, ldb: n, beta: 1, c: dxb, ldc: n)
                } else {
                    // dcol = Wᵀ[K×Cout] · dY[Cout×N], then scatter-add into dx
                    BLAS.sgemm(transA: true, transB: false, m: k, n: n, k: cout,
                               a: weight, lda: k, b: gb, ldb: n, c: col, ldc: n)
                    Im2Col.accumulate(col, ld: n, g, into: dxb)
                }
            }
        }
    }
}
