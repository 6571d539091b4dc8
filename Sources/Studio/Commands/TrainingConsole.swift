// What `train-base` and `train-decoder` show and log while they train: every step appended to
// DIR/metrics.jsonl and drawn on the progress line; Ctrl-C and --stop-after end the run at the
// next step boundary (the trainer then checkpoints).

import Foundation
import Pipeline

final class TrainingConsole {
    private let metrics: MetricsLog
    private let command: String
    private var progress: ProgressLine
    private let interrupt = InterruptFlag.install()
    private let stopAfter: Int?
    private let started = Date()
    /// Steps taken in this run, and the losses of the last one.
    private(set) var done = 0
    private(set) var last: [String: Float] = [:]

    /// Truncates the metrics log to the checkpoint being resumed (`phase`, `firstStep`).
    init(command: String, metricsPath: String, phase: String, firstStep: Int, stopAfter: Int?) throws {
        metrics = MetricsLog(path: metricsPath)
        try metrics.truncate(after: phase, step: firstStep)
        self.command = command
        progress = ProgressLine(label: "\(command) \(phase)", quiet: false, firstStep: firstStep)
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
        let rate = Double(done) / max(seconds, 1e-9)
        metrics.append(.step(step: step, total: total, losses: losses, lr: learningRate, itPerSecond: rate, eta: Double(total - step) / max(rate, 1e-9)),
                       phase: phase)
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

    /// Runs `trainer` on the shared TrainingLoop: every step logged and drawn, checkpoints noted,
    /// a new progress line per phase; Ctrl-C and --stop-after end it at a step boundary.
    func train(_ trainer: Trainer) throws {
        defer { progress.finish() }
        do {
            try TrainingLoop.run(trainer) { e in
                switch e.kind {
                case .step: step(phase: e.phase, step: e.step, total: e.total, losses: e.losses, learningRate: e.learningRate)
                case .checkpoint: note("checkpoint at \(e.phase) step \(e.step)")
                case .phaseFinished: restart(label: "\(command) \(trainer.phase)")
                case .finished: finish()
                }
                return shouldContinue
            }
        } catch { throw StudioError.wrap(error) }
    }
}

/// The metrics of a training run, in the one format every run writes (JobEvent lines, which
/// the studio plots) plus the phase; on resume, drops the lines after the checkpoint so the
/// curve continues without the steps the crash lost.
struct MetricsLog {
    let path: String
    /// Phases in run order (train-base's); other runs have a single phase.
    static let order = ["vae", "unet", "done"]

    func append(_ event: JobEvent, phase: String) {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        guard let d = try? e.encode(Phased(event: event, phase: phase)) else { return }
        JobLog.append(line: String(decoding: d, as: UTF8.self), to: path)
    }

    /// A JobEvent's JSON object with a "phase" key beside its own.
    private struct Phased: Encodable {
        let event: JobEvent, phase: String
        enum Key: String, CodingKey { case phase }
        func encode(to encoder: Encoder) throws {
            try event.encode(to: encoder)
            var c = encoder.container(keyedBy: Key.self)
            try c.encode(phase, forKey: .phase)
        }
    }

    /// Keeps the lines of phases before `phase` and of `phase` up to `step`.
    func truncate(after phase: String, step: Int) throws {
        let cut = Self.order.firstIndex(of: phase) ?? 0
        try JSONLines.keep(path) { line in
            guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any],
                  let p = o["phase"] as? String, let s = o["step"] as? Int else { return false }
            let i = Self.order.firstIndex(of: p) ?? 0
            return i < cut || (p == phase && s <= step)
        }
    }
}
