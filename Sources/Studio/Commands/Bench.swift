// `troupe bench …`: speed measurements (never in tests). Each subcommand prints a table, or
// one JSON object with the keys of design §7 under --json.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel and model speed.",
        subcommands: [BenchKernels.self, BenchUNet.self, BenchGenerate.self, BenchPreview.self, BenchTune.self],
        defaultSubcommand: BenchKernels.self
    )
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GEMM, conv2d 3×3 at SD shapes, attention at 4096 tokens, group norm.")

    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    @Option(help: "Seconds to spend on each measurement (at least one run).")
    var seconds: Double = 1.0

    func run() throws {
        let report = KernelBenchmark(secondsPerCase: seconds).run { line in
            FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
        }
        if json {
            print(report.json())
        } else {
            print(report.table())
        }
    }
}

struct BenchUNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "One CFG UNet step (batch 2) of an SD 1.5-shaped model with random weights.")

    @Option(help: "Model shape: sd15 (64×64 latents, 77×768 context).")
    var preset = "sd15"
    @Option(help: "Timed repetitions after one warm-up step (the best is reported).")
    var repeats = 2
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func run() throws {
        let r: UNetBenchmarkResult
        do {
            r = try UNetBenchmark.run(preset: preset, repeats: repeats) { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
        } catch { throw StudioError.wrap(error) }
        let rss = PeakMemory.megabytes
        if json {
            let obj: [String: Any] = ["seconds_per_step": r.secondsPerStep, "gflops": r.gflops, "gflop_per_step": r.gflop,
                                      "peak_rss_mb": rss, "preset": r.preset, "threads": BLAS.threads]
            try printJSON(obj)
        } else {
            print(String(format: "unet %@: %.3f s/step, %.1f GFLOP/step, %.1f GFLOP/s, peak RSS %.0f MB",
                         r.preset, r.secondsPerStep, r.gflop, r.gflops, rss))
        }
    }
}

struct BenchPreview: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Sixel encode of a 512×512 image; a 16-image 64×64 grid composed and encoded.")

    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    /// A photo-like test image: gradients, shapes and mild noise (harder to quantise than flat art).
    static func testImage(_ n: Int, seed: UInt64) -> RGBImage {
        var rng = SplitMixRandom(seed: seed)
        var p = [UInt8](repeating: 0, count: n * n * 3)
        for y in 0..<n {
            for x in 0..<n {
                let i = (y * n + x) * 3
                let noise = Int(rng.next() % 24) - 12
                let dx = x - n / 2, dy = y - n / 3
                let inCircle = dx * dx + dy * dy < n * n / 16
                p[i] = UInt8(clamping: (inCircle ? 230 : x * 255 / n) + noise)
                p[i + 1] = UInt8(clamping: (inCircle ? 180 : y * 255 / n) + noise)
                p[i + 2] = UInt8(clamping: ((x + y) * 128 / n) + noise)
            }
        }
        return RGBImage(width: n, height: n, pixels: p)
    }

    static func best(_ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<7 {
            let t = Date()
            try body()
            best = min(best, Date().timeIntervalSince(t))
        }
        return best
    }

    func run() throws {
        let big = BenchPreview.testImage(512, seed: 1)
        let small = (0..<16).map { BenchPreview.testImage(64, seed: UInt64($0)) }
        var bytes = 0
        let sixel = try BenchPreview.best { bytes = try Sixel.encode(big).count }
        let grid = try BenchPreview.best {
            let g = Grid(cells: (0..<4).map { r in (0..<4).map { c in small[r * 4 + c] } },
                         rowLabels: ["a", "b", "c", "d"], columnLabels: ["1", "2", "3", "4"])
            _ = try Sixel.encode(g.compose())
        }
        if json {
            let obj: [String: Any] = ["sixel_512_ms": sixel * 1e3, "grid16_ms": grid * 1e3, "sixel_512_bytes": bytes]
            try printJSON(obj)
        } else {
            print(String(format: "sixel encode 512×512: %.1f ms (%d bytes; target < 50 ms)", sixel * 1e3, bytes))
            print(String(format: "grid of 16 × 64×64, composed + sixel: %.1f ms (target < 30 ms)", grid * 1e3))
        }
    }
}
