// `troupe bench …`: speed measurements (never in tests). Each subcommand prints a table, or
// one JSON object with the keys of design §7 under --json.

import ArgumentParser
import Foundation
import Pipeline

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel and model speed.",
        subcommands: [BenchKernels.self],
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
