// Kernel speed measurements for `troupe bench kernels`: the same cases as
// tools/bench/torch_kernels.py, so tools/bench/compare_kernels.py can print ratios.

import Foundation

public struct BenchCase: Sendable {
    public let name: String
    public let seconds: Double      // best of the timed runs
    public let flops: Double        // 0 when the case is bandwidth-bound
    public let bytes: Double        // 0 when the case is compute-bound
    public var gflops: Double { flops / seconds / 1e9 }
    public var gbps: Double { bytes / seconds / 1e9 }
}

public struct KernelReport: Sendable {
    public let cases: [BenchCase]
    public let blas: String
    public let threads: Int

    public func value(_ name: String) -> BenchCase? { cases.first { $0.name == name } }

    public var sgemmGFlops: Double { value("sgemm_1024")?.gflops ?? 0 }
    /// The slowest SD conv shape, the one that bounds UNet speed.
    public var conv3x3GFlops: Double { cases.filter { $0.name.hasPrefix("conv3x3") }.map(\.gflops).min() ?? 0 }

    public func json() -> String {
        var caseDict: [String: Any] = [:]
        for c in cases {
            var d: [String: Any] = ["seconds": c.seconds]
            if c.flops > 0 { d["gflops"] = c.gflops }
            if c.bytes > 0 { d["gbps"] = c.gbps }
            caseDict[c.name] = d
        }
        let obj: [String: Any] = [
            "sgemm_gflops": sgemmGFlops,
            "conv3x3_gflops": conv3x3GFlops,
            "conv3x3_over_sgemm": conv3x3GFlops / max(sgemmGFlops, 1e-9),
            "attention_seconds": value("attention_4096x320x8")?.seconds ?? 0,
            "groupnorm_gbps": value("groupnorm_2x320x64x64")?.gbps ?? 0,
            "threads": threads,
            "blas": blas,
            "cases": caseDict,
        ]
        let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    public func table() -> String {
        var lines = ["BLAS: \(blas), threads: \(threads)",
                     "case                          ms        rate"]
        for c in cases {
            let rate = c.flops > 0 ? String(format: "%8.1f GFLOP/s", c.gflops) : String(format: "%8.2f GB/s", c.gbps)
            lines.append(String(format: "%-26@ %9.3f  %@", c.name as NSString, c.seconds * 1e3, rate as NSString))
        }
        lines.append(String(format: "conv3x3 (slowest) / sgemm = %.2f  (target ≥ 0.70)", conv3x3GFlops / max(sgemmGFlops, 1e-9)))
        return lines.joined(separator: "\n")
    }
}

public struct KernelBenchmark {
    public let secondsPerCase: Double

    public init(secondsPerCase: Double = 1.0) { self.secondsPerCase = secondsPerCase }

    /// Best wall time of `body` over repeated runs (one warm-up run first).
    func time(_ body: () -> Void) -> Double {
        body()
        var best = Double.infinity
        let start = Date()
        repeat {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        } while Date().timeIntervalSince(start) < secondsPerCase
        return best
    }

    public func run(progress: (String) -> Void = { _ in }) -> KernelReport {
        var rng = SplitMixRandom(seed: 0)
        var cases: [BenchCase] = []
        func add(_ c: BenchCase) {
            cases.append(c)
            progress(String(format: "%@: %.3f ms", c.name as NSString, c.seconds * 1e3))
        }
        GradMode.noGrad {
            let n = 1024
            let a = Tensor.randn([n, n], using: &rng), b = Tensor.randn([n, n], using: &rng)
            add(BenchCase(name: "sgemm_1024", seconds: time { _ = a.matmul(b) }, flops: 2 * Double(n * n * n), bytes: 0))

            for (c, hw) in [(320, 64), (640, 32), (1280, 16)] {
                let x = Tensor.randn([2, c, hw, hw], using: &rng)
                let w = Tensor.randn([c, c, 3, 3], using: &rng) * 0.02
                let bias = Tensor.randn([c], using: &rng)
                let flops = 2.0 * 2 * Double(c * c * 9 * hw * hw)
                add(BenchCase(name: "conv3x3_\(c)x\(hw)", seconds: time { _ = x.conv2d(w, bias, padding: 1) }, flops: flops, bytes: 0))
            }

            let q = Tensor.randn([2, 4096, 320], using: &rng)
            let k = Tensor.randn([2, 4096, 320], using: &rng)
            let v = Tensor.randn([2, 4096, 320], using: &rng)
            let attnFlops = 2.0 * 2 * 2 * 4096 * 4096 * 320
            add(BenchCase(name: "attention_4096x320x8", seconds: time { _ = Tensor.attention(q: q, k: k, v: v, heads: 8) }, flops: attnFlops, bytes: 0))

            let x = Tensor.randn([2, 320, 64, 64], using: &rng)
            let gw = Tensor.randn([320], using: &rng), gb = Tensor.randn([320], using: &rng)
            add(BenchCase(name: "groupnorm_2x320x64x64", seconds: time { _ = x.groupNorm(groups: 32, weight: gw, bias: gb) }, flops: 0, bytes: Double(x.count * 4 * 2)))
        }
        return KernelReport(cases: cases, blas: BLAS.configuration, threads: BLAS.threads)
    }
}
