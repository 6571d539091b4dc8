// Coarse-grained parallel loops over the machine's cores. Work is split into at most
// `cores` contiguous chunks so each thread streams through its own memory; tiny loops run
// inline. GEMM threading belongs to OpenBLAS: never call sgemm from inside these loops
// unless BLAS threading is pinned to one thread (see BLAS.withSingleThread).

import Foundation

public enum Parallel {
    public static let cores: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body(i)` for i in 0..<n, split in contiguous chunks across cores when there are
    /// at least `grain` iterations per chunk.
    public static func forEach(_ n: Int, grain: Int = 1, _ body: (Int) -> Void) {
        forChunks(n, grain: grain) { range in for i in range { body(i) } }
    }

    /// Calls `body(range)` on contiguous ranges covering 0..<n.
    public static func forChunks(_ n: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        if n <= 0 { return }
        let chunks = min(cores, max(1, n / max(grain, 1)))
        if chunks <= 1 { body(0..<n); return }
        let per = (n + chunks - 1) / chunks
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per, hi = min(n, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }
}
