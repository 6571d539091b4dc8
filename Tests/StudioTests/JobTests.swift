// Background jobs, proven on a real tuning job (stage-1 LoRA on a micro model trained here):
// the event stream, cancel with a checkpoint, SIGKILL at random points with resume, a disk
// that fills up mid-checkpoint, and a queue that runs one job at a time.

import XCTest
import Pipeline
import Preview
@testable import Studio

final class JobTests: XCTestCase {
    var root = ""
    static let microModel: String = {
        let dir = NSTemporaryDirectory() + "troupe-micro-model-\(getpid())"
        if FileManager.default.fileExists(atPath: dir + "/model/model_index.json") { return dir + "/model" }
        var c = BaseTrainingConfig()
        c.architecture = "micro"; c.vaeSteps = 2; c.unetSteps = 2; c.vaeBatch = 2; c.unetBatch = 2; c.warmup = 1
        let tok = TroupeRun.repo.appendingPathComponent("models/clip-tokenizer").path
        let t = try! BaseModelTrainer(directory: dir, config: c, tokenizerDirectory: tok)
        try! t.run { _ in true }
        return dir + "/model"
    }()

    override func setUp() {
        root = NSTemporaryDirectory() + "troupe-jobs-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }
    var store: CharacterStore { CharacterStore(root: root) }

    /// A character on the micro model with two accepted references; returns the references' bytes.
    func makeCharacter(_ name: String) throws -> [Data] {
        _ = try store.create(name, prompt: "a knight waving", baseWord: "knight", seed: 3, model: Self.microModel)
        var paths: [String] = []
        for i in 0..<2 {
            let p = root + "/ref\(i).png"
            let px = (0..<(64 * 64 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (i + 3)) }
            try PNGCodec.write(RGBImage(width: 64, height: 64, pixels: px), to: p)
            paths.append(p)
        }
        let r = try store.add(name, images: paths, accepted: true)
        return try r.references.map { try Data(contentsOf: URL(fileURLWithPath: store.folder(name) + "/" + $0.file)) }
    }

    func tune(_ name: String, _ extra: [String], onEvent: @escaping (JobEvent, JobRunner) -> Void = { _, _ in }) -> JobRunner {
        var runner: JobRunner!
        runner = JobRunner(executable: TroupeRun.binary, arguments: ["tune", "stage1", name, "--json"] + extra, environment: env) { e in
            onEvent(e, runner)
        }
        return runner
    }

    func testEventStreamAndCancelWithCheckpointThenResume() throws {
        _ = try makeCharacter("Ada")
        let job = tune("Ada", ["--steps", "12", "--checkpoint-every", "4", "--preview-every", "6"]) { e, r in
            if case .step(let s, _, _, _, _, _) = e, s == 6 { r.cancel() }
        }
        try job.start(); job.wait()
        XCTAssertEqual(job.status, .cancelled)
        let ev = job.events
        guard case .started(_, "stage1", "Ada", 0, 12)? = ev.first else { return XCTFail("first event \(String(describing: ev.first))") }
        XCTAssertTrue(ev.contains { if case .sample(6, let p) = $0 { return FileManager.default.fileExists(atPath: p) }; return false })
        guard case .cancelled(let stoppedAt)? = ev.last else { return XCTFail("last event \(String(describing: ev.last))") }
        XCTAssertTrue(ev.contains { if case .checkpoint(stoppedAt, _) = $0 { return true }; return false }, "a checkpoint at the cancelled step")
        XCTAssertEqual(try store.load("Ada").runs.last?.status, "cancelled")

        let resumed = tune("Ada", ["--resume"])
        try resumed.start(); resumed.wait()
        XCTAssertEqual(resumed.status, .finished)
        guard case .started(_, _, _, stoppedAt, 12)? = resumed.events.first else { return XCTFail("resume did not start at \(stoppedAt)") }
        let record = try store.load("Ada")
        XCTAssertEqual(record.runs.count, 1)
        XCTAssertEqual(record.runs[0].status, "finished")
        XCTAssertNoThrow(try LoRAFile(path: store.folder("Ada") + "/lora/stage1.safetensors"))
        // The log is one continuous curve: steps 1…12 once each.
        let log = JobLog(path: store.folder("Ada") + "/runs/\(record.runs[0].id)/metrics.jsonl").events()
        XCTAssertEqual(log.compactMap { if case .step(let s, _, _, _, _, _) = $0 { return s }; return nil }, Array(1...12))
    }

    /// Preview samples (drawn at the model's stage-LoRA multiplier) leave training alone: the
    /// same character tuned with a preview every step and with none gives the same LoRA.
    func testPreviewsDoNotChangeTraining() throws {
        _ = try makeCharacter("Pre"); _ = try makeCharacter("Non")
        for (name, extra) in [("Pre", ["--preview-every", "1"]), ("Non", ["--preview-every", "0"])] {
            let job = tune(name, ["--steps", "3"] + extra)
            try job.start(); job.wait()
            XCTAssertEqual(job.status, .finished, name)
        }
        let a = try SafetensorsFile(path: store.folder("Pre") + "/lora/stage1.safetensors")
        let b = try SafetensorsFile(path: store.folder("Non") + "/lora/stage1.safetensors")
        XCTAssertEqual(Set(a.entries.keys), Set(b.entries.keys))
        for k in a.entries.keys {
            let diff = zip(try a.tensor(k).toArray(), try b.tensor(k).toArray()).map { abs($0 - $1) }.max() ?? 0
            XCTAssertEqual(diff, 0, k)
        }
    }

    /// SIGTERM and SIGHUP (an SSH drop) stop a job the way Ctrl-C does: a checkpoint at the
    /// step it stopped on and a run marked cancelled, not a run left "running".
    func testSIGTERMAndSIGHUPStopWithACheckpoint() throws {
        _ = try makeCharacter("Cy")
        for (i, sig) in [SIGTERM, SIGHUP].enumerated() {
            var sent = false
            let job = tune("Cy", (i == 0 ? ["--steps", "30", "--checkpoint-every", "50"] : ["--resume"])) { e, r in
                if case .step = e, !sent { sent = true; r.send(sig) }   // once: a second request quits at once
            }
            try job.start(); job.wait()
            XCTAssertEqual(job.status, .cancelled, "signal \(sig)")
            guard case .cancelled(let at)? = job.events.last else { return XCTFail("signal \(sig): last event \(String(describing: job.events.last))") }
            XCTAssertTrue(job.events.contains { if case .checkpoint(at, _) = $0 { return true }; return false }, "signal \(sig): checkpoint at \(at)")
            XCTAssertEqual(try store.load("Cy").runs.last?.status, "cancelled")
        }
    }

    /// A torn multi-byte character in the log (invalid UTF-8) costs that line only: resuming
    /// keeps every earlier line byte for byte.
    func testInvalidUTF8LineInTheLogLosesOnlyThatLine() throws {
        let path = root + "/metrics.jsonl"
        let log = JobLog(path: path)
        log.append(.started(run: "r", kind: "stage1", character: "A", step: 0, total: 9))
        for s in 1...3 { log.append(.step(step: s, total: 9, losses: ["loss": 0.5], lr: 1e-4, itPerSecond: 2, eta: 1)) }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.append(contentsOf: Array("{\"step\": 4, \"x\": \"".utf8) + [0xC3, 0x0A])   // a torn "é"
        try bytes.write(to: URL(fileURLWithPath: path))
        log.append(.step(step: 5, total: 9, losses: ["loss": 0.4], lr: 1e-4, itPerSecond: 2, eta: 1))
        XCTAssertEqual(log.events().count, 5, "started + steps 1, 2, 3, 5")
        let before = JSONLines.lines(path)
        try log.truncate(afterStep: 3)
        XCTAssertEqual(log.events().count, 4)
        XCTAssertEqual(JSONLines.lines(path), Array(before.prefix(4)), "kept lines are the original bytes")
    }

    func testSIGKILLAtRandomPointsThenResumeLosesNothing() throws {
        let refs = try makeCharacter("Bo")
        var rng = SystemRandomNumberGenerator()
        var killedAt: [Int] = []
        var first = true
        for _ in 0..<3 {
            let target = Int.random(in: 2...5, using: &rng)
            var seen = 0
            let job = tune("Bo", (first ? ["--steps", "40", "--checkpoint-every", "3"] : ["--resume"])) { e, r in
                if case .step = e { seen += 1; if seen == target { r.kill9() } }
            }
            try job.start(); job.wait()
            if case .failed(let why) = job.status { XCTAssertTrue(why.contains("signal"), why) } else { XCTFail("\(job.status)") }
            killedAt.append(target)
            first = false
            // Between crashes: the character and every kept checkpoint are intact.
            try assertIntact("Bo", refs)
        }
        let last = tune("Bo", ["--resume"])
        try last.start(); last.wait()
        XCTAssertEqual(last.status, .finished, "killed after \(killedAt) steps of each piece")
        try assertIntact("Bo", refs)
        let record = try store.load("Bo")
        XCTAssertEqual(record.runs.count, 1)
        XCTAssertEqual(record.runs[0].status, "finished")
        let steps = JobLog(path: store.folder("Bo") + "/runs/\(record.runs[0].id)/metrics.jsonl").events()
            .compactMap { if case .step(let s, _, _, _, _, _) = $0 { return s }; return nil }
        XCTAssertEqual(steps, Array(1...40), "the resumed loss curve continues the old one")
    }

    func assertIntact(_ name: String, _ refs: [Data], file: StaticString = #filePath, line: UInt = #line) throws {
        let record = try store.load(name)   // parses
        XCTAssertEqual(try record.references.map { try Data(contentsOf: URL(fileURLWithPath: store.folder(name) + "/" + $0.file)) }, refs,
                       file: file, line: line)
        for run in record.runs {
            let ck = TrainingCheckpoint(directory: store.folder(name) + "/runs/" + run.id)
            guard let latest = ck.latest else { continue }
            let dirs = try FileManager.default.contentsOfDirectory(atPath: ck.root).filter { $0.hasPrefix("step-") }
            XCTAssertTrue(dirs.contains((latest as NSString).lastPathComponent), file: file, line: line)
            for d in dirs where ck.root + "/" + d <= latest {
                // Every completed checkpoint (up to the one `latest` names) opens and parses.
                XCTAssertNoThrow(try SafetensorsFile(path: ck.root + "/" + d + "/weights.safetensors"), file: file, line: line)
                XCTAssertNoThrow(try SafetensorsFile(path: ck.root + "/" + d + "/optimizer.safetensors"), file: file, line: line)
                XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: ck.root + "/" + d + "/state.json"))),
                                file: file, line: line)
            }
        }
    }

    /// While a tuning job writes into a character's folder, delete and rename are refused
    /// with the job's pid (moving the folder would leave the job recreating a half character);
    /// once the job is cancelled they work.
    func testDeleteAndRenameWaitForARunningJob() throws {
        _ = try makeCharacter("Dee")
        var refusals: [TroupeRun] = []
        let job = tune("Dee", ["--steps", "400", "--checkpoint-every", "100"]) { e, r in
            guard case .step(2, _, _, _, _, _) = e, refusals.isEmpty else { return }
            refusals = [try! TroupeRun.run(["character", "delete", "Dee"], environment: self.env),
                        try! TroupeRun.run(["character", "rename", "Dee", "Dora"], environment: self.env)]
            r.cancel()
        }
        try job.start(); job.wait()
        XCTAssertEqual(job.status, .cancelled)
        XCTAssertEqual(refusals.count, 2)
        for r in refusals {
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains("tuning job running (PID"), r.stderr)
        }
        XCTAssertNoThrow(try store.load("Dee"))
        XCTAssertEqual(try TroupeRun.run(["character", "rename", "Dee", "Dora"], environment: env).status, 0)
        XCTAssertEqual(try TroupeRun.run(["character", "delete", "Dora"], environment: env).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.folder("Dee")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.folder("Dora")))
    }

    func testFullDiskKeepsThePreviousCheckpointAndSaysWhy() throws {
        _ = try makeCharacter("Cy")
        let job = tune("Cy", ["--steps", "30", "--checkpoint-every", "2"]) { e, r in
            if case .checkpoint(2, _) = e { r.kill9() }
        }
        try job.start(); job.wait()
        let runID = try XCTUnwrap(try store.load("Cy").runs.last?.id)
        let ck = TrainingCheckpoint(directory: store.folder("Cy") + "/runs/" + runID)
        let before = try XCTUnwrap(ck.latest)
        let weights = try FileManager.default.attributesOfItem(atPath: before + "/weights.safetensors")[.size] as! Int
        // A file-size limit below the checkpoint's weights file and above the small files:
        // the next checkpoint write fails (EFBIG, as on a full disk).
        let limitKB = max(2, weights / 1024 / 2)
        XCTAssertGreaterThan(weights, limitKB * 1024)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", "ulimit -f \(limitKB); exec \"$0\" tune stage1 Cy --resume", TroupeRun.binary]
        p.environment = env
        let err = Pipe(); p.standardError = err; p.standardOutput = Pipe()
        try p.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 1, stderr)
        XCTAssertTrue(stderr.contains("File too large"), stderr)
        XCTAssertEqual(ck.latest, before, "latest still names the previous checkpoint")
        XCTAssertNoThrow(try SafetensorsFile(path: before + "/weights.safetensors"))
        // With space again, the run resumes from it.
        let again = tune("Cy", ["--resume"])
        try again.start(); again.wait()
        XCTAssertEqual(again.status, .finished)
    }

    func testQueueRunsOneHeavyJobAtATime() throws {
        _ = try makeCharacter("Di")
        _ = try makeCharacter("Ed")
        let queue = JobQueue()
        let a = tune("Di", ["--steps", "6"]), b = tune("Ed", ["--steps", "6"])
        queue.submit(a); queue.submit(b)
        // While a runs, b waits in position 1.
        let deadline = Date().addingTimeInterval(60)
        while a.status != .running && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(b.status, .waiting(position: 1))
        a.wait(); b.wait()
        XCTAssertEqual(a.status, .finished); XCTAssertEqual(b.status, .finished)
        XCTAssertLessThanOrEqual(try XCTUnwrap(a.endedAt), try XCTUnwrap(b.startedAt), "b started only after a ended")
    }
}
