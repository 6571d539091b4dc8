// `troupe tune KIND NAME`: a tuning run on a character, as a job with an event stream
// (runs/<id>/metrics.jsonl; JSON lines on stdout with --json). Ctrl-C (SIGINT, which is how
// the studio cancels) stops at the next step boundary with a checkpoint; after a crash or
// SIGKILL, `--resume` continues the character's latest unfinished run of that kind.
// Kinds: stage1 (appearance LoRA). oneactor, stage2 and stage3 arrive with their issues.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune", abstract: "Tune the model to a character (background job with checkpoints).")

    @Argument(help: "stage1 (appearance LoRA from the accepted references); oneactor, stage2, stage3 are not implemented yet.")
    var kind: String
    @Argument(help: "Character name.")
    var name: String
    @Option(help: "Optimiser steps.")
    var steps: Int?
    @Option(help: "LoRA rank.")
    var rank: Int?
    @Option(name: .customLong("learning-rate"), help: "AdamW learning rate.")
    var learningRate: Float?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int?
    @Option(name: .customLong("preview-every"), help: "Render a preview sample every N steps (0: never).")
    var previewEvery = 0
    @Option(help: "Model folder (default: the character's model).")
    var model: String?
    @Flag(help: "Continue the character's latest unfinished run of this kind.")
    var resume = false
    @Flag(help: "Print the event stream as JSON lines on stdout.")
    var json = false
    @OptionGroup var options: StoreOptions

    func run() throws {
        guard kind == "stage1" else {
            if ["oneactor", "stage2", "stage3"].contains(kind) { throw StudioError.failed("tune \(kind) is not implemented yet") }
            throw StudioError.badInput("unknown tuning kind '\(kind)' (stage1; oneactor, stage2, stage3 to come)")
        }
        let store = options.store
        let record = try storeCall { try store.load(name) }
        let folder = store.folder(record.name)
        guard !record.references.isEmpty else {
            throw StudioError.badInput("\(record.name) has no accepted references; add some with `troupe character accept \(record.name) IMAGE.png`")
        }
        let modelRef = model ?? (record.model == ModelLocator.defaultModelName ? nil : record.model)
        let (pipe, _) = try ModelLocator.loadPipeline(modelRef)
        let refs: [Tensor] = try record.references.map { entry in
            do { return ImageTensors.tensor(from: try PNGCodec.read(path: folder + "/" + entry.file)) } catch {
                throw StudioError.badInput("\(folder)/\(entry.file): \(error)")
            }
        }

        // The run: a new one, or the latest unfinished one of this kind.
        let runID: String
        if resume {
            guard let last = record.runs.last(where: { $0.kind == kind && $0.status != "finished" }) else {
                throw StudioError.badInput("\(record.name) has no unfinished \(kind) run to resume")
            }
            runID = last.id
        } else {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
            runID = "\(kind)-\(stamp)-\(getpid())"
        }
        let runDir = folder + "/runs/" + runID
        try? FileManager.default.createDirectory(atPath: runDir + "/samples", withIntermediateDirectories: true)
        // Only one process may drive a run.
        let runLock: FileLock
        do { runLock = try FileLock(path: runDir + "/.lock", name: "\(record.name) run \(runID)", wait: false) } catch let e as StoreError { throw e.studio }
        defer { withExtendedLifetime(runLock) {} }
        let log = JobLog(path: runDir + "/metrics.jsonl")

        let tuner: AppearanceTuner
        do {
            if resume, TrainingCheckpoint(directory: runDir).latest != nil {
                tuner = try AppearanceTuner.resume(pipeline: pipe, references: refs, directory: runDir)
                try log.truncate(afterStep: tuner.state.step)
            } else if resume {
                // Killed before its first checkpoint: the run starts over with its own config.
                guard let data = FileManager.default.contents(atPath: runDir + "/config.json"),
                      let c = try? JSONDecoder().decode(AppearanceTuningConfig.self, from: data) else {
                    throw StudioError.badInput("\(runDir): no checkpoint and no readable config.json; start a new run without --resume")
                }
                tuner = try AppearanceTuner(pipeline: pipe, references: refs, prompt: record.prompt, config: c, directory: runDir)
                try log.truncate(afterStep: 0)
            } else {
                var c = AppearanceTuningConfig()
                if let steps { c.steps = steps }
                if let rank { c.rank = rank }
                if let learningRate { c.learningRate = learningRate }
                if let checkpointEvery { c.checkpointEvery = checkpointEvery }
                c.seed = record.seed
                guard c.steps >= 1, c.rank >= 1, c.checkpointEvery >= 1 else { throw StudioError.badInput("--steps, --rank and --checkpoint-every must be ≥ 1") }
                tuner = try AppearanceTuner(pipeline: pipe, references: refs, prompt: record.prompt, config: c, directory: runDir)
                try AtomicFile.write(try JSONEncoder().encode(c), to: runDir + "/config.json")
                try storeCall { try store.update(record.name) { r, _ in r.runs.append(.init(id: runID, kind: kind, status: "running", created: Date())) } }
            }
        } catch let e as StudioError { throw e } catch { throw StudioError.wrap(error) }

        func emit(_ e: JobEvent) {
            log.append(e)
            if json { print(e.jsonLine()); fflush(stdout) }
        }
        func setStatus(_ s: String) {
            _ = try? store.update(record.name) { r, _ in
                if let i = r.runs.lastIndex(where: { $0.id == runID }) { r.runs[i].status = s }
            }
        }
        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "tune \(kind) \(record.name)", quiet: json, firstStep: tuner.state.step)
        let started = Date(), firstStep = tuner.state.step
        emit(.started(run: runID, kind: kind, character: record.name, step: firstStep, total: tuner.state.config.steps))
        if resume { setStatus("running") }
        do {
            try tuner.run { e in
                switch e.kind {
                case .step:
                    let rate = Double(e.step - firstStep) / max(Date().timeIntervalSince(started), 1e-9)
                    emit(.step(step: e.step, total: e.total, losses: e.losses, lr: e.learningRate, itPerSecond: rate,
                               eta: rate > 0 ? Double(e.total - e.step) / rate : 0))
                    progress.update(step: e.step, total: e.total, extra: String(format: "loss %.4f", e.losses["loss"] ?? 0))
                    if previewEvery > 0 && e.step % previewEvery == 0, let path = try? preview(pipe, record, runDir, e.step) {
                        emit(.sample(step: e.step, path: path))
                    }
                case .checkpoint:
                    emit(.checkpoint(step: e.step, path: TrainingCheckpoint(directory: runDir).latest ?? runDir))
                case .finished:
                    break
                }
                return !interrupt.isSet
            }
        } catch {
            // Failures while training (a full disk among them) are runtime failures, exit 1.
            progress.finish()
            emit(.failed(reason: "\(error)"))
            setStatus("failed")
            throw StudioError.failed("\(error)")
        }
        progress.finish()
        if interrupt.isSet && tuner.state.step < tuner.state.config.steps {
            emit(.cancelled(step: tuner.state.step))
            setStatus("cancelled")
            throw StudioError.cancelled("tune cancelled at step \(tuner.state.step) with a checkpoint; continue with: troupe tune \(kind) \"\(record.name)\" --resume")
        }
        let out = folder + "/lora/\(kind).safetensors"
        do {
            try FileManager.default.createDirectory(atPath: folder + "/lora", withIntermediateDirectories: true)
            try tuner.saveLoRA(to: out)
        } catch { emit(.failed(reason: "\(error)")); setStatus("failed"); throw StudioError.wrap(error) }
        setStatus("finished")
        emit(.finished(step: tuner.state.step, outputs: [out]))
        if !json { print(out) }
    }

    /// One sample with the adapters as trained so far (the character's prompt and seed).
    func preview(_ pipe: StableDiffusionPipeline, _ r: CharacterRecord, _ runDir: String, _ step: Int) throws -> String {
        var req = GenerationRequest(prompt: r.prompt)
        req.seed = r.seed; req.steps = 15; req.guidanceScale = r.settings.cfg ?? pipe.defaults.guidanceScale
        let out = try pipe.generate(req)
        let path = runDir + String(format: "/samples/step-%06d.png", step)
        try PNGCodec.write(RGBImage(width: out.width, height: out.height, pixels: out.images[0]), to: path)
        return path
    }
}
