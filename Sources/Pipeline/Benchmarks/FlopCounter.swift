// Counts the floating-point work of the big kernels (GEMM-based linear/matmul/conv and
// attention) so benchmarks can report GFLOP/s of a whole model. Ops are issued from one
// thread (kernels parallelise inside), so a plain counter is enough.

public enum FlopCounter {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public private(set) static var flops: Double = 0

    @inline(__always)
    static func add(_ f: Double) { if enabled { flops += f } }

    public static func reset() { flops = 0 }
}
