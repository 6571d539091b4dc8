// The `troupe` command line: a thin layer over the library targets (design §7).
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad input.

import ArgumentParser
import Foundation

@main
struct Troupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "troupe",
        abstract: "A terminal studio for consistent characters with diffusion models.",
        subcommands: [StudioCommand.self, Generate.self, Show.self, Doctor.self, Tokenize.self, WorldCommand.self, TrainJudge.self, TrainBase.self, TrainDecoder.self, Eval.self, CharacterCommand.self, Tune.self, IdentityCommand.self, GridCommand.self, Bench.self],
        defaultSubcommand: StudioCommand.self
    )

    static func main() {
        tuneRuntimeEnvironment()
        // A full disk or a file-size limit must surface as a write error with a message
        // (checkpoints stay intact), not as a silent SIGXFSZ death.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(with: error)
        }
    }

    /// Settings read once when a process starts, so they are put in the environment (where
    /// the user has not set them) and the process re-executes itself:
    /// - OpenBLAS worker threads spin (sched_yield) for ~2^28 cycles after each GEMM, taking
    ///   the cores from Troupe's own parallel loops between GEMMs (4% of an SD 1.5 UNet step).
    /// - Tensors of 1–256 MB are allocated and freed every layer; glibc serves them with fresh
    ///   mmaps or trims freed heap back to the kernel, so each allocation page-faults its
    ///   memory in again (11%: 17.6 → 15.6 s per step). Keep them on the heap.
    static func tuneRuntimeEnvironment() {
        let settings = [("OPENBLAS_THREAD_TIMEOUT", "4"), ("MALLOC_MMAP_THRESHOLD_", String(256 << 20)),
                        ("MALLOC_TRIM_THRESHOLD_", String(Int32.max))]
        var changed = false
        for (k, v) in settings where getenv(k) == nil { setenv(k, v, 1); changed = true }
        guard changed else { return }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed (no /proc): carry on with the defaults
    }

    /// Prints the error and exits with the code of design §7.
    static func exit(with error: Error) -> Never {
        if let e = error as? StudioError {
            FileHandle.standardError.write(Data(("troupe: " + e.description + "\n").utf8))
            Foundation.exit(e.exitCode)
        }
        let code = exitCode(for: error)
        if code == .success {  // --help, --version
            print(fullMessage(for: error))
            Foundation.exit(0)
        }
        let message = fullMessage(for: error)
        // ArgumentParser reports usage problems as EX_USAGE (64); Troupe's contract says 2.
        if code.rawValue == 64 || code == .validationFailure {
            FileHandle.standardError.write(Data((message + "\n").utf8))
            Foundation.exit(2)
        }
        FileHandle.standardError.write(Data(("troupe: " + message + "\n").utf8))
        Foundation.exit(1)
    }
}
