// What `train-base` and `train-decoder` show and log while they train: every step appended to
// DIR/metrics.jsonl and drawn on the progress line; Ctrl-C and --stop-after end the run at the
// next step boundary (the trainer then checkpoints).

import Foundation
import Pipeline

final class TrainingConsole {
    private let metrics: MetricsLog
    private var progress: ProgressLine
    private let interrupt = InterruptFlag.install()
    private let stopAfter: Int?
    private let started = Date()
    /// Steps taken in this run, and the losses of the last one.
    private(set) var done = 0
    private(set) var last: [String: Float] = [:]

    /// Truncates the metrics log to the checkpoint being resumed (`phase`, `firstStep`).
    init(label: String, metricsPath: String, phase: String, firstStep: Int, stopAfter: Int?) throws {
        metrics = MetricsLog(path: metricsPath)
        try metrics.truncate(after: phase, step: firstStep)
        progress = ProgressLine(label: label, quiet: false, firstStep: firstStep)
        self.stopAfter = stopAfter
    }

    /// Creates the run folder of a new run; refuses one that already holds a run.
    static func claimNewRun(_ out: String) throws {
        if TrainingCheckpoint(directory: out).latest != nil {
            throw StudioError.badInput("\(out) already holds a run; pass --resume to continue it, or choose another --out")
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    }

    var interrupted: Bool { interrupt.isSet }
    var seconds: Double { Date().timeIntervalSince(started) }
    var shouldContinue: Bool { !interrupt.isSet && (stopAfter.map { done < $0 } ?? true) }

    func step(phase: String, step: Int, total: Int, losses: [String: Float], learningRate: Float) {
        done += 1
        last = losses
        metrics.append(["phase": phase, "step": step, "lr": learningRate, "time": Date().timeIntervalSince1970]
            .merging(losses.mapValues { $0 as Any }) { a, _ in a })
        let text = losses.keys.sorted().map { String(format: "%@ %.4f", $0, losses[$0]!) }.joined(separator: "  ")
        progress.update(step: step, total: total, extra: text + String(format: "  lr %.1e", learningRate))
    }

    func note(_ text: String) { progress.note(text) }
    func finish() { progress.finish() }

    /// A new progress line (a new phase, counted from step 0).
    func restart(label: String) {
        progress.finish()
        progress = ProgressLine(label: label, quiet: false, firstStep: 0)
    }

    /// Runs the training loop; the progress line is closed however it ends.
    func run(_ body: () throws -> Void) throws {
        defer { progress.finish() }
        do { try body() } catch { throw StudioError.wrap(error) }
    }
}

/// Appends one JSON object per line; on resume, drops the lines after the checkpoint so the
/// curve continues without the steps the crash lost.
struct MetricsLog {
    let path: String

    func append(_ object: [String: Any]) {
        guard let d = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        JobLog.append(line: String(decoding: d, as: UTF8.self), to: path)
    }

    /// Keeps the lines of phases before `phase` and of `phase` up to `step`.
    func truncate(after phase: String, step: Int) throws {
        let order = ["vae", "unet", "done"]
        guard let cut = order.firstIndex(of: phase) else { return }
        try JSONLines.keep(path) { line in
            guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                  let p = o["phase"] as? String, let i = order.firstIndex(of: p), let s = o["step"] as? Int else { return false }
            return i < cut || (i == cut && s <= step)
        }
    }
}
