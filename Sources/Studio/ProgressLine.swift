// One self-rewriting progress line on stderr: step, total, it/s, ETA. Plain lines when
// stderr is not a terminal, so logs stay readable.

import Foundation

final class ProgressLine {
    let label: String
    let quiet: Bool
    private let start = Date()
    private var lastStep = -1
    private let firstStep: Int
    private let isTTY = isatty(2) != 0
    /// (time, step) samples of the last minute: the rate (and ETA) follows the recent speed,
    /// not the average since start, which misleads in hours-long runs whose load changes.
    private var window: [(Date, Int)] = []

    /// `firstStep`: where a resumed run starts (rates count only this run's steps).
    init(label: String, quiet: Bool, firstStep: Int = 0) { self.label = label; self.quiet = quiet; self.firstStep = firstStep }

    func update(step: Int, total: Int, extra: String = "") {
        guard !quiet, step != lastStep else { return }
        lastStep = step
        let now = Date()
        window.append((now, step))
        while let first = window.first, now.timeIntervalSince(first.0) > 60, window.count > 2 { window.removeFirst() }
        let rate: Double
        if let (t0, s0) = window.first, window.count >= 3, step > s0 {
            rate = Double(step - s0) / now.timeIntervalSince(t0)
        } else {
            rate = step > firstStep ? Double(step - firstStep) / now.timeIntervalSince(start) : 0
        }
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let line = String(format: "%@ %d/%d  %.2f it/s  ETA %.0fs%@", label, step, total, rate, eta, extra.isEmpty ? "" : "  " + extra)
        FileHandle.standardError.write(Data((isTTY ? "\r\u{1B}[K" + line : line + "\n").utf8))
    }

    /// A message on its own line, without losing the progress line.
    func note(_ text: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data(((isTTY ? "\r\u{1B}[K" : "") + text + "\n").utf8))
        lastStep = -1
    }

    func finish() {
        if !quiet && isTTY && lastStep >= 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Stop requests for long commands: Ctrl-C (SIGINT), SIGTERM and SIGHUP (an SSH drop) set a
/// flag the work checks at its next step boundary, so it leaves a checkpoint and a status that
/// says so; a second request exits at once. After SIGHUP the terminal is gone, so standard
/// output and error, where they were that terminal, go to /dev/null: a progress line written
/// to a hung-up tty must not kill the run.
final class InterruptFlag: @unchecked Sendable {
    nonisolated(unsafe) private static var shared = InterruptFlag()
    nonisolated(unsafe) private static var count: sig_atomic_t = 0
    nonisolated(unsafe) private static var lastSignal: sig_atomic_t = 0
    private static let message = strdup("\ntroupe: stopping at the next step (Ctrl-C again to quit now)\n")!

    var isSet: Bool { InterruptFlag.count > 0 }
    /// The signal that asked to stop (0: none yet).
    var stopSignal: Int32 { InterruptFlag.lastSignal }

    static func install() -> InterruptFlag {
        // A signal handler may only do async-signal-safe work: Swift initialises a static on its
        // first use (swift_once, which allocates), so every static the handler touches is
        // initialised here, before any handler can run. (A Ctrl-C that arrived inside malloc
        // while the handler made `message` deadlocked a tuning job on the allocator's lock.)
        _ = (InterruptFlag.message, InterruptFlag.count, InterruptFlag.lastSignal, InterruptFlag.shared)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            Foundation.signal(sig) { code in
                InterruptFlag.count += 1
                InterruptFlag.lastSignal = code
                if InterruptFlag.count > 1 { _exit(128 + code) }
                if code == SIGHUP {
                    let null = open("/dev/null", O_WRONLY)
                    if null >= 0 { for fd: Int32 in [1, 2] where isatty(fd) == 1 { dup2(null, fd) } }
                    return
                }
                _ = write(2, InterruptFlag.message, strlen(InterruptFlag.message))
            }
        }
        Foundation.signal(SIGPIPE, SIG_IGN)
        return shared
    }
}
