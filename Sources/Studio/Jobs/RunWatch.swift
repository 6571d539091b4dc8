// The studio's view of one tuning run: its events, read incrementally from
// runs/<id>/metrics.jsonl (the file every trainer writes; the studio never needs the job's
// pipes, so a run started by an earlier studio or by the CLI reattaches the same way), and
// whether a process is driving it now (the pid in the run's lock file, checked alive).

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class RunWatch {
    let id: String
    let directory: String
    private(set) var events: [JobEvent] = []
    private var offset: UInt64 = 0
    private var partial = Data()

    init(id: String, directory: String) { self.id = id; self.directory = directory }

    var metricsPath: String { directory + "/metrics.jsonl" }

    /// Reads what was appended since the last poll; returns whether events arrived. A file
    /// that shrank (a resumed run drops the steps its crash lost) is read again from the start.
    @discardableResult
    func poll() -> Bool {
        guard let h = FileHandle(forReadingAtPath: metricsPath) else { return false }
        defer { try? h.close() }
        let size = (try? h.seekToEnd()) ?? 0
        if size < offset { offset = 0; partial = Data(); events = [] }
        guard size > offset else { return false }
        try? h.seek(toOffset: offset)
        let data = h.readDataToEndOfFile()
        offset += UInt64(data.count)
        partial.append(data)
        var added = false
        while let nl = partial.firstIndex(of: 0x0A) {
            let line = partial[partial.startIndex..<nl]
            partial = Data(partial[(nl + 1)...])
            if let e = try? JSONDecoder().decode(JobEvent.self, from: line) { events.append(e); added = true }
        }
        return added
    }

    /// The pid of the live process that holds this run's lock (nil: nobody runs it).
    var livePID: pid_t? { RunWatch.holder(lockPath: directory + "/.lock") }

    /// Reads the pid a FileLock wrote and checks that it is a live troupe process (a dead
    /// holder leaves its pid behind; the check keeps a recycled pid from counting).
    static func holder(lockPath: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: lockPath, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0 || errno == EPERM,
              let cmd = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
        let args = cmd.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.contains("tune") ? pid : nil
    }

    /// Loss series by name (step, value), in event order.
    var lossSeries: [(name: String, points: [(x: Double, y: Double)])] {
        var order: [String] = [], points: [String: [(x: Double, y: Double)]] = [:]
        for case let .step(step, _, losses, _, _, _) in events {
            for (k, v) in losses.sorted(by: { $0.key < $1.key }) {
                if points[k] == nil { order.append(k) }
                points[k, default: []].append((Double(step), Double(v)))
            }
        }
        return order.map { ($0, points[$0]!) }
    }

    var lastStep: (step: Int, total: Int, lr: Float, rate: Double, eta: Double)? {
        for case let .step(s, t, _, lr, r, e) in events.reversed() { return (s, t, lr, r, e) }
        return nil
    }

    var latestSample: String? {
        for case let .sample(_, path) in events.reversed() { return path }
        return nil
    }

    /// The final event, if the run ended (finished, failed or cancelled).
    var ending: JobEvent? {
        switch events.last { case .finished?, .failed?, .cancelled?: return events.last; default: return nil }
    }
}
