// The typed event stream of a background job (generation or tuning). One JSON object per line:
// appended to runs/<id>/metrics.jsonl, and printed on stdout by `troupe tune … --json`, which
// is how the studio's job runner (a child process) reads it.

import Foundation
import Pipeline

enum JobEvent: Codable, Equatable {
    case started(run: String, kind: String, character: String, step: Int, total: Int)
    case step(step: Int, total: Int, losses: [String: Float], lr: Float, itPerSecond: Double, eta: Double)
    case sample(step: Int, path: String)
    case checkpoint(step: Int, path: String)
    case finished(step: Int, outputs: [String])
    case failed(reason: String)
    case cancelled(step: Int)

    private enum Key: String, CodingKey { case type, run, kind, character, step, total, losses, lr, itPerSecond = "it_s", eta, path, outputs, reason }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case let .started(run, kind, character, step, total):
            try c.encode("started", forKey: .type); try c.encode(run, forKey: .run); try c.encode(kind, forKey: .kind)
            try c.encode(character, forKey: .character); try c.encode(step, forKey: .step); try c.encode(total, forKey: .total)
        case let .step(step, total, losses, lr, rate, eta):
            try c.encode("step", forKey: .type); try c.encode(step, forKey: .step); try c.encode(total, forKey: .total)
            try c.encode(losses, forKey: .losses); try c.encode(lr, forKey: .lr); try c.encode(rate, forKey: .itPerSecond); try c.encode(eta, forKey: .eta)
        case let .sample(step, path):
            try c.encode("sample", forKey: .type); try c.encode(step, forKey: .step); try c.encode(path, forKey: .path)
        case let .checkpoint(step, path):
            try c.encode("checkpoint", forKey: .type); try c.encode(step, forKey: .step); try c.encode(path, forKey: .path)
        case let .finished(step, outputs):
            try c.encode("finished", forKey: .type); try c.encode(step, forKey: .step); try c.encode(outputs, forKey: .outputs)
        case .failed(let reason):
            try c.encode("failed", forKey: .type); try c.encode(reason, forKey: .reason)
        case .cancelled(let step):
            try c.encode("cancelled", forKey: .type); try c.encode(step, forKey: .step)
        }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        switch try c.decode(String.self, forKey: .type) {
        case "started": self = .started(run: try c.decode(String.self, forKey: .run), kind: try c.decode(String.self, forKey: .kind),
                                        character: try c.decode(String.self, forKey: .character), step: try c.decode(Int.self, forKey: .step),
                                        total: try c.decode(Int.self, forKey: .total))
        case "step": self = .step(step: try c.decode(Int.self, forKey: .step), total: try c.decode(Int.self, forKey: .total),
                                  losses: try c.decode([String: Float].self, forKey: .losses), lr: try c.decode(Float.self, forKey: .lr),
                                  itPerSecond: try c.decode(Double.self, forKey: .itPerSecond), eta: try c.decode(Double.self, forKey: .eta))
        case "sample": self = .sample(step: try c.decode(Int.self, forKey: .step), path: try c.decode(String.self, forKey: .path))
        case "checkpoint": self = .checkpoint(step: try c.decode(Int.self, forKey: .step), path: try c.decode(String.self, forKey: .path))
        case "finished": self = .finished(step: try c.decode(Int.self, forKey: .step), outputs: try c.decode([String].self, forKey: .outputs))
        case "failed": self = .failed(reason: try c.decode(String.self, forKey: .reason))
        case "cancelled": self = .cancelled(step: try c.decode(Int.self, forKey: .step))
        case let t: throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown event type '\(t)'")
        }
    }

    var step: Int? {
        switch self {
        case .started(_, _, _, let s, _), .step(let s, _, _, _, _, _), .sample(let s, _), .checkpoint(let s, _), .finished(let s, _), .cancelled(let s): return s
        case .failed: return nil
        }
    }

    func jsonLine() -> String {
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// runs/<id>/metrics.jsonl. On resume the lines after the checkpoint's step are dropped, so
/// the resumed curve continues the old one without the steps the crash lost.
struct JobLog {
    let path: String

    func append(_ e: JobEvent) { JobLog.append(line: e.jsonLine(), to: path) }

    /// One line appended with O_APPEND in a single write: a crash leaves at most a torn last
    /// line, which readers skip. Logging never fails the work it logs.
    static func append(line: String, to path: String) {
        let data = Data((line + "\n").utf8)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func events() -> [JobEvent] {
        JSONLines.lines(path).compactMap { try? JSONDecoder().decode(JobEvent.self, from: $0) }
    }

    /// Keeps events up to `step`, byte for byte, and drops lines that do not parse (a torn
    /// last line a SIGKILL may have left).
    func truncate(afterStep step: Int) throws {
        try JSONLines.keep(path) { line in
            guard let e = try? JSONDecoder().decode(JobEvent.self, from: line) else { return false }
            switch e {
            case .step(let s, _, _, _, _, _), .sample(let s, _), .checkpoint(let s, _): return s <= step
            case .started: return true
            case .finished, .failed, .cancelled: return false
            }
        }
    }
}
