import Foundation

// Scaled-dot-product attention, multi-head, over [B, L, heads·d] layouts (heads are column
// blocks, addressed through sgemm's leading dimension, so no permute copies). Queries are
// processed in chunks so the score matrix never exceeds ~8 MB: at 4096 tokens that is a
// 512×4096 block instead of 64 MB per head. Backward recomputes the probabilities per chunk
// (flash-attention style memory, plain GEMMs). An optional key mask (AttentionKeyMask: per
// batch row, the keys a query may not attend to) sets those scores to −∞ before the softmax,
// as diffusers' encoder_attention_mask does with its −10000 bias.

struct AttentionShape {
    let batch: Int, queries: Int, keys: Int, heads: Int, headDim: Int
    let scale: Float
    let causal: Bool
    var width: Int { heads * headDim }
    /// Score elements per chunk: sized so a chunk's scores stay in L2 between the Q·Kᵀ GEMM,
    /// the softmax and the P·V GEMM (memory traffic, not FLOPs, bounds attention at d = 40).
    /// Tests lower it to force chunking.
    static let defaultScoreBudget = 1 << 16  // 256 KB; measured best of 16K…1M at 4096 tokens
    nonisolated(unsafe) static var scoreBudget = defaultScoreBudget
    /// Query rows per chunk.
    var chunk: Int { Swift.max(1, Swift.min(queries, AttentionShape.scoreBudget / Swift.max(keys, 1))) }
    /// Heads run in parallel (one per core, BLAS single-threaded) when there are enough.
    var parallelHeads: Bool { batch * heads >= Parallel.cores && Parallel.cores > 1 }
}

enum AttentionKernel {
    /// Runs `body(b, h)` over every (batch, head); small problems run heads in parallel with
    /// BLAS pinned to one thread, large ones let BLAS use the cores inside each GEMM.
    static func forEachHead(_ s: AttentionShape, _ body: @escaping (Int, Int) -> Void) {
        let n = s.batch * s.heads
        if s.parallelHeads {
            BLAS.withSingleThread { Parallel.forEach(n) { i in body(i / s.heads, i % s.heads) } }
        } else {
            for i in 0..<n { body(i / s.heads, i % s.heads) }
        }
    }

    /// Sets the masked keys' scores of `rows` score rows to −∞ (`masked`: the row's batch entry
    /// of the key mask, true where a key is skipped).
    static func maskKeys(_ scores: UnsafeMutablePointer<Float>, rows: Int, keys: Int, masked: ArraySlice<Bool>) {
        for (j, m) in masked.enumerated() where m {
            for r in 0..<rows { scores[r * keys + j] = -.infinity }
        }
    }

    static func maskCausal(_ scores: UnsafeMutablePointer<Float>, q0: Int, rows: Int, keys: Int) {
        for r in 0..<rows {
            let i = q0 + r
            if i + 1 < keys { (scores + r * keys + i + 1).update(repeating: -.infinity, count: keys - i - 1) }
        }
    }

    /// P = softmax(scale·Q_chunk·Kᵀ) for one head, into `scores` [rows × S].
    static func probabilities(_ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                              q0: Int, rows: Int, scores: UnsafeMutablePointer<Float>, parallelRows: Bool, masked: ArraySlice<Bool>?) {
        BLAS.sgemm(transA: false, transB: true, m: rows, n: s.keys, k: s.headDim, alpha: s.scale,
                   a: q + q0 * s.width, lda: s.width, b: k, ldb: s.width, c: scores, ldc: s.keys)
        if s.causal { maskCausal(scores, q0: q0, rows: rows, keys: s.keys) }
        if let masked { maskKeys(scores, rows: rows, keys: s.keys, masked: masked) }
        if parallelRows {
            Parallel.forEach(rows, grain: 16) { r in SoftmaxKernel.row(scores + r * s.keys, s.keys) }
        } else {
            for r in 0..<rows { SoftmaxKernel.row(scores + r * s.keys, s.keys) }
        }
    }

    static func forward(_ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                        v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, mask: AttentionKeyMask? = nil) {
        let chunk = s.chunk
        forEachHead(s) { b, h in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: chunk * s.keys)
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
            let maxima = UnsafeMutablePointer<Float>.allocate(capacity: chunk)
            let kT = UnsafeMutablePointer<Float>.allocate(capacity: PanelGemm.packedCount(k: s.headDim, n: s.keys))
            let vP = UnsafeMutablePointer<Float>.allocate(capacity: PanelGemm.packedCount(k: s.keys, n: s.headDim))
            defer { scores.deallocate(); sums.deallocate(); maxima.deallocate(); kT.deallocate(); vP.deallocate() }
            let qh = q + b * s.queries * s.width + h * s.headDim
            let kh = k + b * s.keys * s.width + h * s.headDim
            let vh = v + b * s.keys * s.width + h * s.headDim
            let oh = out + b * s.queries * s.width + h * s.headDim
            PanelGemm.pack(kh, ld: s.width, k: s.headDim, n: s.keys, transposed: true, into: kT)
            PanelGemm.pack(vh, ld: s.width, k: s.keys, n: s.headDim, transposed: false, into: vP)
            var q0 = 0
            while q0 < s.queries {
                let rows = Swift.min(chunk, s.queries - q0)
                PanelGemm.multiply(a: qh + q0 * s.width, lda: s.width, packed: kT, k: s.headDim, n: s.keys,
                                   rows: rows, alpha: s.scale, out: scores, ldo: s.keys, rowMax: maxima)
                let masked = mask?.row(b)
                if s.causal || masked != nil {
                    // The mask changes the maxima: recompute them over the unmasked keys.
                    if s.causal { maskCausal(scores, q0: q0, rows: rows, keys: s.keys) }
                    if let masked { maskKeys(scores, rows: rows, keys: s.keys, masked: masked) }
                    for r in 0..<rows { maxima[r] = Tensor.rowMax(scores + r * s.keys, s.keys) }
                }
                if s.parallelHeads {
                    for r in 0..<rows { sums[r] = SoftmaxKernel.unnormalisedRow(scores + r * s.keys, s.keys, max: maxima[r]) }
                } else {
                    Parallel.forEach(rows, grain: 16) { r in sums[r] = SoftmaxKernel.unnormalisedRow(scores + r * s.keys, s.keys, max: maxima[r]) }
                }
                // O = (E·V) / Σ E: normalising the d-wide product, not the S-wide row.
                let o = oh + q0 * s.width
                PanelGemm.multiply(a: scores, lda: s.keys, packed: vP, k: s.keys, n: s.headDim,
                                   rows: rows, alpha: 1, out: o, ldo: s.width)
                for r in 0..<rows {
                    let inv = sums[r] > 0 ? 1 / sums[r] : 0
                    let orow = o + r * s.width
                    for j in 0..<s.headDim { orow[j] *= inv }
                }
                q0 += rows
            }
        }
    }

    /// dQ, dK, dV (each fully written) from dO.
    static func backward(_ s: AttentionShape, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                         v: UnsafePointer<Float>, dOut: UnsafePointer<Float>,
                         dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
                         dv: UnsafeMutablePointer<Float>, mask: AttentionKeyMask? = nil) {
        let chunk = s.chunk
        dk.update(repeating: 0, count: s.batch * s.keys * s.width)
        dv.update(repeating: 0, count: s.batch * s.keys * s.width)
        forEachHead(s) { b, h in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: chunk * s.keys)
            let dp = UnsafeMutablePointer<Float>.allocate(capacity: chunk * s.keys)
            defer { p.deallocate(); dp.deallocate() }
            let qOff = b * s.queries * s.width + h * s.headDim
            let kOff = b * s.keys * s.width + h * s.headDim
            var q0 = 0
            while q0 < s.queries {
                let rows = Swift.min(chunk, s.queries - q0)
                probabilities(s, q: q + qOff, k: k + kOff, q0: q0, rows: rows, scores: p, parallelRows: !s.parallelHeads, masked: mask?.row(b))
                let dO = dOut + qOff + q0 * s.width
                // dV += Pᵀ · dO
                BLAS.sgemm(transA: true, transB: false, m: s.keys, n: s.headDim, k: rows,
                           a: p, lda: s.keys, b: dO, ldb: s.width, beta: 1, c: dv + kOff, ldc: s.width)
                // dP = dO · Vᵀ
                BLAS.sgemm(transA: false, transB: true, m: rows, n: s.keys, k: s.headDim,
                           a: dO, lda: s.width, b: v + kOff, ldb: s.width, c: dp, ldc: s.keys)
                // dS = P ⊙ (dP − rowsum(dP ⊙ P))
                for r in 0..<rows { SoftmaxKernel.rowBackward(y: p + r * s.keys, dy: dp + r * s.keys, s.keys) }
                // dQ = scale · dS · K
                BLAS.sgemm(transA: false, transB: false, m: rows, n: s.headDim, k: s.keys, alpha: s.scale,
                           a: dp, lda: s.keys, b: k + kOff, ldb: s.width, c: dq + qOff + q0 * s.width, ldc: s.width)
                // dK += scale · dSᵀ · Q
                BLAS.sgemm(transA: true, transB: false, m: s.keys, n: s.headDim, k: rows, alpha: s.scale,
                           a: dp, lda: s.keys, b: q + qOff + q0 * s.width, ldb: s.width,
                           beta: 1, c: dk + kOff, ldc: s.width)
                q0 += rows
            }
        }
    }
}

/// The keys each batch row's queries may not attend to (diffusers' `encoder_attention_mask`, 0
/// where a token is skipped): `masked[b·keys + j]` true skips key j for row b. Every row keeps
/// at least one key (a softmax over nothing is undefined).
public struct AttentionKeyMask: Equatable, Sendable {
    public let masked: [Bool]
    public let keys: Int

    public init(masked: [Bool], keys: Int) {
        precondition(keys > 0 && masked.count % keys == 0, "a key mask holds whole rows of \(keys) keys")
        for b in 0..<(masked.count / keys) { precondition(masked[(b * keys)..<((b + 1) * keys)].contains(false), "row \(b) masks every key") }
        self.masked = masked; self.keys = keys
    }

    public var rows: Int { masked.count / keys }
    func row(_ b: Int) -> ArraySlice<Bool> { masked[(b * keys)..<((b + 1) * keys)] }
}
