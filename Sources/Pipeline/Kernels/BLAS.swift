// The one door to cblas_sgemm. Operands are described by pointer + leading dimension +
// transpose flag, so transposed views (strides swapped) reach GEMM without a copy.

import CBLAS

public enum BLAS {
    /// C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, row-major.
    @inline(__always)
    public static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        _ = BLASProcessExit.registered
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }

    /// Runs `body` with OpenBLAS pinned to one thread, for regions that parallelise over many
    /// small GEMMs themselves (never nest both kinds of threading).
    public static func withSingleThread<T>(_ body: () throws -> T) rethrows -> T {
        let saved = threads
        if saved == 1 { return try body() }
        threads = 1
        defer { threads = saved }
        return try body()
    }

    /// e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64"
    public static var configuration: String {
        String(cString: openblas_get_config()) + " core=" + String(cString: openblas_get_corename())
    }

    /// A GEMM operand view of a rank-2 (or trailing-2-dims) tensor: no copy when one of the
    /// two last dims has unit stride.
    struct Operand {
        let tensor: Tensor   // keeps the memory alive
        let pointer: UnsafeMutablePointer<Float>
        let trans: Bool
        let ld: Int
    }

    /// True when the trailing two dims can be handed to sgemm as they are.
    static func isGemmFriendly(_ t: Tensor) -> Bool {
        let r = t.rank
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        let sr = t.strides[r - 2], sc = t.strides[r - 1]
        return (sc == 1 && (sr >= cols || rows == 1)) || (sr == 1 && (sc >= rows || cols == 1))
    }

    /// `t` itself when its matrices are GEMM-friendly, else a dense copy.
    static func gemmFriendly(_ t: Tensor) -> Tensor { isGemmFriendly(t) ? t : t.contiguous() }

    static func operand(_ t: Tensor) -> Operand {
        let r = t.rank
        let rows = t.shape[r - 2], cols = t.shape[r - 1]
        let sr = t.strides[r - 2], sc = t.strides[r - 1]
        if sc == 1 && (sr >= cols || rows == 1) { return Operand(tensor: t, pointer: t.dataPointer, trans: false, ld: Swift.max(sr, cols, 1)) }
        if sr == 1 && (sc >= rows || cols == 1) { return Operand(tensor: t, pointer: t.dataPointer, trans: true, ld: Swift.max(sc, rows, 1)) }
        let c = t.contiguous()
        return Operand(tensor: c, pointer: c.dataPointer, trans: false, ld: Swift.max(cols, 1))
    }
}
