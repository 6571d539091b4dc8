// Background jobs for the studio. Each job is a `troupe` child process (`troupe tune KIND NAME
// --json`), not a thread in the studio: a job that crashes, runs out of memory or is killed
// cannot take the studio (and the artist's terminal) down with it; cancelling is SIGINT, the
// same path as Ctrl-C on the command line (checkpoint at the next step boundary); and the
// studio reads exactly the event stream scripts read. The queue runs one heavy job at a time
// per studio; the others wait and know their position.

import Foundation

final class JobRunner: @unchecked Sendable {
    enum Status: Equatable { case waiting(position: Int), running, finished, failed(String), cancelled }

    let arguments: [String]
    let executable: String
    private let lock = NSLock()
    private var process: Process?
    private var _status: Status = .waiting(position: 0)
    private var _events: [JobEvent] = []
    private var onEvent: (JobEvent) -> Void
    private let done = DispatchSemaphore(value: 0)

    /// `arguments`: the troupe command line after the executable, e.g. ["tune", "stage1", "Ada", "--json"].
    init(executable: String = JobRunner.selfExecutable, arguments: [String], environment: [String: String]? = nil,
         onEvent: @escaping (JobEvent) -> Void = { _ in }) {
        self.executable = executable; self.arguments = arguments; self.onEvent = onEvent; self.environment = environment
    }
    let environment: [String: String]?

    static var selfExecutable: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

    var status: Status { lock.lock(); defer { lock.unlock() }; return _status }
    private(set) var startedAt: Date?, endedAt: Date?
    var events: [JobEvent] { lock.lock(); defer { lock.unlock() }; return _events }

    func setWaiting(_ position: Int) { lock.lock(); if case .waiting = _status { _status = .waiting(position: position) }; lock.unlock() }

    /// Starts the child; events arrive on a background thread, in order.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        lock.lock(); _status = .running; process = p; startedAt = Date(); lock.unlock()
        do { try p.run() } catch {
            lock.lock(); _status = .failed("cannot start \(executable): \(error)"); lock.unlock()
            done.signal()
            throw error
        }
        // stderr drains on its own thread so a chatty child never blocks on a full pipe.
        let stderrDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread { [self] in
            let d = err.fileHandleForReading.readDataToEndOfFile()
            lock.lock(); stderrData = d; lock.unlock()
            stderrDone.signal()
        }
        // One reader for stdout: events are parsed in the order the child wrote them.
        Thread.detachNewThread { [self] in
            while true {
                let d = out.fileHandleForReading.availableData
                if d.isEmpty { break }
                consume(d, flush: false)
            }
            consume(Data(), flush: true)
            p.waitUntilExit()
            stderrDone.wait()
            lock.lock()
            let stderr = String(decoding: stderrData, as: UTF8.self)
            endedAt = Date()
            switch _events.last {
            case .finished?: _status = .finished
            case .cancelled?: _status = .cancelled
            case .failed(let r)?: _status = .failed(r)
            default:
                let why = p.terminationReason == .uncaughtSignal ? "killed by signal \(p.terminationStatus)" : "exited with status \(p.terminationStatus)"
                let tail = stderr.split(separator: "\n").last.map(String.init) ?? ""
                _status = .failed(tail.isEmpty ? why : "\(why): \(tail)")
            }
            lock.unlock()
            done.signal()
        }
    }

    private var pending = Data()
    private var stderrData = Data()
    private func consume(_ data: Data, flush: Bool) {
        lock.lock()
        pending.append(data)
        var lines: [Data] = []
        while let nl = pending.firstIndex(of: 0x0A) {
            lines.append(pending[pending.startIndex..<nl])
            pending = Data(pending[(nl + 1)...])
        }
        if flush && !pending.isEmpty { lines.append(pending); pending = Data() }
        var parsed: [JobEvent] = []
        for l in lines { if let e = try? JSONDecoder().decode(JobEvent.self, from: l) { parsed.append(e) } }
        _events += parsed
        lock.unlock()
        for e in parsed { onEvent(e) }
    }

    /// Asks the job to stop at its next step boundary (it writes a checkpoint first).
    func cancel() { send(SIGINT) }

    /// Stops the job at once (no checkpoint): what a crash looks like.
    func kill9() { send(SIGKILL) }

    /// Sends `signal` to the job's process, if it is still running.
    func send(_ signal: Int32) { lock.lock(); let p = process; lock.unlock(); if let p, p.isRunning { kill(p.processIdentifier, signal) } }

    /// Blocks until the child has exited.
    func wait() { done.wait(); done.signal() }
}

/// One heavy job at a time; the rest wait in order and are told their position.
final class JobQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var queue: [JobRunner] = []
    private var current: JobRunner?
    private let worker = DispatchQueue(label: "troupe.jobs")

    func submit(_ job: JobRunner) {
        lock.lock(); queue.append(job); renumber(); lock.unlock()
        worker.async { [self] in
            lock.lock(); queue.removeAll { $0 === job }; current = job; renumber(); lock.unlock()
            do { try job.start(); job.wait() } catch { }
            lock.lock(); current = nil; lock.unlock()
        }
    }

    private func renumber() { for (i, j) in queue.enumerated() { j.setWaiting(i + 1) } }

    var running: JobRunner? { lock.lock(); defer { lock.unlock() }; return current }
    var waiting: [JobRunner] { lock.lock(); defer { lock.unlock() }; return queue }
}
