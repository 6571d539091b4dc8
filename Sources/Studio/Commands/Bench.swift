// `troupe bench …`: speed measurements (never in tests). Each subcommand prints a table, or
// one JSON object with the keys of design §7 under --json.

import ArgumentParser
import Foundation
import Pipeline

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel and model speed.",
        subcommands: [BenchKernels.self, BenchUNet.self],
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
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print(String(format: "unet %@: %.3f s/step, %.1f GFLOP/step, %.1f GFLOP/s, peak RSS %.0f MB",
                         r.preset, r.secondsPerStep, r.gflop, r.gflops, rss))
        }
    }
}
