// The `troupe` command line: a thin layer over the library targets (design §7).
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad input.

import ArgumentParser
import Foundation

@main
struct Troupe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "troupe",
        abstract: "A terminal studio for consistent characters with diffusion models.",
        subcommands: [Generate.self, Tokenize.self, Bench.self]
    )

    static func main() {
        quietenBLASThreads()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(with: error)
        }
    }

    /// OpenBLAS worker threads spin (sched_yield) for ~2^28 cycles after each GEMM, stealing
    /// the cores from Troupe's own parallel loops between GEMMs (measured: 4% of an SD 1.5
    /// UNet step). The timeout is read once when the library loads, so set it and re-exec.
    static func quietenBLASThreads() {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        var argv = CommandLine.unsafeArgv
        execv("/proc/self/exe", argv)
        _ = argv  // exec failed (no /proc): carry on with the default timeout
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
