// `troupe tune KIND NAME`: a tuning run on a character, as a job with an event stream
// (runs/<id>/metrics.jsonl; JSON lines on stdout with --json). Ctrl-C, SIGTERM and SIGHUP stop
// at the next step boundary with a checkpoint; after a crash or SIGKILL, `--resume` continues
// the character's latest unfinished run of that kind. Every kind runs on Pipeline's one
// TrainingLoop; what differs (the trainer and its outputs) is in TuneJobs.swift.

import ArgumentParser
import Foundation
import Pipeline
import Preview

/// What `tune` can run (a closed set). stage2/stage3/stages arrive with their issue.
enum TuneKind: String, CaseIterable {
    case stage1, stage2, stage3, oneactor
    static let planned: [String] = []
}

struct Tune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune", abstract: "Tune the model to a character (background job with checkpoints).")

    @Argument(help: "oneactor (one-shot: a projector from the target and auxiliary samples), stage1 (appearance LoRA from the accepted references), stage2 (detail/style: continues stage 1 with an identity loss and prior preservation), stage3 (pose/expression: continues stage 2 with the training judge on x̂₀), stages (1 → 2 → 3, each a run of its own).")
    var kind: String
    @Argument(help: "Character name.")
    var name: String
    @Option(help: "Optimiser steps.")
    var steps: Int?
    @Option(help: "stage1: LoRA rank.")
    var rank: Int?
    @Option(name: .customLong("text-encoder-rank"), help: "stage1: also train LoRA adapters of this rank on the text encoder's attention and MLP projections (0, the default: the text encoder stays frozen); later stages continue them.")
    var textEncoderRank: Int?
    @Option(name: .customLong("conv-rank"), help: "stage1: rank of the LoCon adapters on the UNet's ResNet convolutions (0: attention layers only; default \(AppearanceTuningConfig().convRank)); later stages continue them.")
    var convRank: Int?
    @Option(name: .customLong("ff-rank"), help: "stage1: also train LoRA adapters of this rank on the UNet's feed-forward layers (0: off; default \(AppearanceTuningConfig().feedForwardRank)); later stages continue them.")
    var feedForwardRank: Int?
    @Option(name: .customLong("snr-gamma"), help: "stage1: Min-SNR-γ weighting of the diffusion loss's rows (diffusers' --snr_gamma; 5 is the paper's; 0, the default: off); later stages keep it.")
    var snrGamma: Float?
    @Option(name: .customLong("summary-offset"), help: "stage1/stages: pivotal tuning — also learn one text offset at the character's base word and the prompt's summary tokens with the LoRA, at this multiple of its learning rate (0: off; default: the model's troupe.json lora_summary_offset, else 0); later stages continue it and generate applies it.")
    var summaryOffset: Float?
    @Flag(name: .customLong("pose-view"), help: "stage3/stages: stage 3's pose/expression rows also name a random view, and the training judge's view cross-entropy joins the term (off by default).")
    var poseView = false
    @Option(help: "stage1/stages: random-resized crops of the references, removing up to this fraction of the side (0…0.5; off by default: troupe-mini never draws a sprite at another size).")
    var crop: Float?
    @Option(name: .customLong("color-jitter"), help: "stage1/stages: brightness/contrast/saturation jitter amplitude (0…0.5; off by default: colours are a character's identity).")
    var colorJitter: Float?
    @Option(help: "oneactor: auxiliary samples to generate (other seeds, same prompt).")
    var auxiliaries: Int?
    @Option(name: .customLong("offset-site"), help: "oneactor: where δ goes — output (added to the text encoder's output at the base word, as the paper), input (to the base word's token embedding) or summary (the output at the base word and at the end and padding tokens).")
    var offsetSite: String?
    @Option(help: "oneactor: noise draws per batch row (1–16; the paper: 1).")
    var draws: Int?
    @Option(name: .customLong("timesteps"), help: "oneactor: training timesteps A:B (from A up to but not including B; default 0:1000, all).")
    var timesteps: String?
    @Option(name: .customLong("pose-weight"), help: "oneactor: weight of Troupe's pose/expression term (the training judge on rows that ask for a random pose and expression, so the character keeps following those words; 0: off; for 64×64 World-like models such as troupe-mini).")
    var poseWeight: Float?
    @Option(name: .customLong("identity-weight"), help: "oneactor: weight of Troupe's identity term (the IdentityEncoder on the target row's decoded x̂₀; 0: the paper's loss alone; for models of 64×64 World-like images such as troupe-mini).")
    var identityWeight: Float?
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

    @Option(help: "stages: tune the character K times (tuning seeds the character's + 0, 7919, 2·7919, …) and write each stage's LoRA as their norm-matched soup (the mean of their weight deltas, rescaled per layer to their mean norm; \(SamplingDefaults.soupSizesText); default: the model's lora_soup, else 1).")
    var soup: Int?
    /// Which tuning of a soup a stage run is, and the soup's size (set by `tune stages --soup`;
    /// its LoRA goes to lora/soup/<k>/).
    @Option(help: .hidden)
    var member: Int?
    @Option(name: .customLong("member-of"), help: .hidden)
    var soupOfMember: Int?

    /// `tune stages`: stage 1, 2 and 3 in order, each a run of its own (its own events, checkpoints
    /// and LoRA), each on a freshly loaded model; with a soup of K, that K times, each tuning's
    /// LoRAs in lora/soup/<k>/, then each stage's soup in lora/. With --resume, a stage whose
    /// latest run finished is skipped, an unfinished one resumes, and the stages after it start.
    func runStages() throws {
        let size = try soupSize()
        let members: [Int?] = size == 1 ? [nil] : (0..<size).map(Optional.some)
        for m in members {
            for stage in ["stage1", "stage2", "stage3"] {
                let record = try storeCall { try options.store.load(name) }
                let latest = record.runs.last { $0.kind == stage && $0.member == m }
                var one = self
                one.kind = stage; one.resume = false; one.soup = nil; one.member = m; one.soupOfMember = m == nil ? nil : size
                if resume, let latest {
                    if latest.status != "finished" { one.resume = true }
                    else if FileManager.default.fileExists(atPath: TuneSetup.loraDirectory(options.store.folder(record.name), member: m) + "/\(stage).safetensors") { continue }
                }
                try one.run()
            }
        }
        if size > 1 { try writeSoups(size) }
    }

    /// The soup size: --soup, else the character's model's lora_soup, else 1.
    func soupSize() throws -> Int {
        let size: Int
        if let soup { size = soup } else {
            let record = try storeCall { try options.store.load(name) }
            size = try ModelLocator.samplingDefaults(model ?? (record.model == ModelLocator.defaultModelName ? nil : record.model)).stageSoup
        }
        guard SamplingDefaults.soupSizes.contains(size) else { throw StudioError.badInput("--soup must be in \(SamplingDefaults.soupSizesText)") }
        return size
    }

    /// Each stage's LoRA as the norm-matched soup (LoRASoup) of the soup's tunings of it.
    func writeSoups(_ size: Int) throws {
        let record = try storeCall { try options.store.load(name) }
        let folder = options.store.folder(record.name)
        for stage in 1...3 {
            let out = folder + "/lora/stage\(stage).safetensors"
            do {
                let files = try (0..<size).map { try LoRAFile(path: TuneSetup.loraDirectory(folder, member: $0) + "/stage\(stage).safetensors") }
                var (tensors, _) = try LoRASoup.file(of: files, normMatched: true)
                var metadata = ["format": "pt", "troupe_stage": String(stage), "troupe_soup": String(size)]
                // The tunings' summary offsets, souped the same way (all or none of them have one).
                let offsets = files.compactMap(\.summaryOffset)
                if !offsets.isEmpty {
                    guard offsets.count == files.count else { throw StudioError.badInput("only some of the soup's tunings of stage \(stage) have a summary offset; tune them alike") }
                    let o = try SummaryOffset.soup(of: offsets, normMatched: true)
                    tensors[SummaryOffset.key] = o.delta
                    metadata.merge(o.metadata) { _, new in new }
                }
                try SafetensorsWriter.write(tensors, to: out, metadata: metadata)
            } catch { throw StudioError.wrap(error) }
            if !json { print(out) }
        }
    }

    func run() throws {
        if kind == "stages" { try runStages(); return }
        guard soup == nil else { throw StudioError.badInput("--soup applies to `tune stages` (each stage's LoRA the soup of several tunings)") }
        if let member {
            guard kind.hasPrefix("stage"), (0..<SamplingDefaults.soupSizes.upperBound).contains(member) else { throw StudioError.badInput("--member: a stage's soup member, 0…\(SamplingDefaults.soupSizes.upperBound - 1)") }
        }
        guard let tuneKind = TuneKind(rawValue: kind) else {
            if TuneKind.planned.contains(kind) { throw StudioError.failed("tune \(kind) is not implemented yet") }
            throw StudioError.badInput("unknown tuning kind '\(kind)' (\((TuneKind.allCases.map(\.rawValue) + ["stages"]).joined(separator: ", ")))")
        }
        let store = options.store
        let record = try storeCall { try store.load(name) }
        let folder = store.folder(record.name)
        if tuneKind != .oneactor, record.references.isEmpty {
            throw StudioError.badInput("\(record.name) has no accepted references; add some with `troupe character accept \(record.name) IMAGE.png`")
        }
        let modelRef = model ?? (record.model == ModelLocator.defaultModelName ? nil : record.model)
        let (pipe, _) = try ModelLocator.loadPipeline(modelRef)

        // The run: a new one, or the latest unfinished one of this kind.
        let runID: String
        if resume {
            guard let last = record.runs.last(where: { $0.kind == kind && $0.member == member && $0.status != "finished" }) else {
                throw StudioError.badInput("\(record.name) has no unfinished \(kind) run to resume")
            }
            runID = last.id
        } else {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
            runID = "\(kind)\(member.map { "-member\($0)" } ?? "")-\(stamp)-\(getpid())"
        }
        let runDir = folder + "/runs/" + runID
        // Never recreate a character folder that was deleted or renamed meanwhile: each level is
        // made with mkdir inside the one above (no intermediates), and the character must still
        // be there once the run's lock is held — from then on delete and rename refuse.
        let vanished = StudioError.badInput("\(record.name) was deleted or renamed while its \(kind) run was starting")
        for dir in [folder + "/runs", runDir, runDir + "/samples"] where mkdir(dir, 0o755) != 0 && errno != EEXIST { throw vanished }
        // Only one process may drive a run.
        let runLock: FileLock
        do { runLock = try FileLock(path: runDir + "/.lock", name: "\(record.name) run \(runID)", wait: false) } catch let e as StoreError { throw e.studio }
        defer { withExtendedLifetime(runLock) {} }
        guard FileManager.default.fileExists(atPath: folder + "/character.json") else { throw vanished }
        let log = JobLog(path: runDir + "/metrics.jsonl")
        let interrupt = InterruptFlag.install()

        func emit(_ e: JobEvent) {
            log.append(e)
            if json { print(e.jsonLine()); fflush(stdout) }
        }
        func setStatus(_ s: String) {
            _ = try? store.update(record.name) { r, _ in
                if let i = r.runs.lastIndex(where: { $0.id == runID }) { r.runs[i].status = s }
            }
        }
        let setup = TuneSetup(command: self, record: record, folder: folder, runDir: runDir, pipeline: pipe, interrupt: interrupt)
        let job: TuneJob
        do {
            switch tuneKind {
            case .stage1: job = try setup.stage1()
            case .stage2: job = try setup.laterStage(2)
            case .stage3: job = try setup.laterStage(3)
            case .oneactor: job = try setup.oneactor()
            }
            try log.truncate(afterStep: job.trainer.stepsDone)
            if !resume {
                try storeCall { try store.update(record.name) { r, _ in r.runs.append(.init(id: runID, kind: kind, status: "running", created: Date(), member: member, soup: soupOfMember)) } }
            }
        } catch {
            // A run refused before its first step leaves nothing behind (a resumed one keeps its folder).
            if !resume { try? FileManager.default.removeItem(atPath: runDir) }
            if let e = error as? StudioError { throw e }
            throw StudioError.wrap(error)
        }

        let trainer = job.trainer
        let progress = ProgressLine(label: "tune \(kind) \(record.name)", quiet: json, firstStep: trainer.stepsDone)
        let started = Date(), firstStep = trainer.stepsDone
        emit(.started(run: runID, kind: kind, character: record.name, step: firstStep, total: trainer.totalSteps))
        if resume { setStatus("running") }
        do {
            try TrainingLoop.run(trainer) { e in
                switch e.kind {
                case .step:
                    let rate = Double(e.step - firstStep) / max(Date().timeIntervalSince(started), 1e-9)
                    emit(.step(step: e.step, total: e.total, losses: e.losses, lr: e.learningRate, itPerSecond: rate,
                               eta: rate > 0 ? Double(e.total - e.step) / rate : 0))
                    progress.update(step: e.step, total: e.total, extra: String(format: "loss %.4f", e.losses["loss"] ?? 0))
                    if previewEvery > 0 && e.step % previewEvery == 0, let path = try? job.preview(e.step) {
                        emit(.sample(step: e.step, path: path))
                    }
                case .checkpoint:
                    emit(.checkpoint(step: e.step, path: TrainingCheckpoint(directory: runDir).latest ?? runDir))
                case .phaseFinished, .finished:
                    break
                }
                return !interrupt.isSet
            }
        } catch {
            // Failures while training (a full disk, a NaN loss) are runtime failures, exit 1;
            // the last checkpoint stays.
            progress.finish()
            emit(.failed(reason: "\(error)"))
            setStatus("failed")
            throw StudioError.failed("\(error) (the last checkpoint is kept; continue with --resume)")
        }
        progress.finish()
        if interrupt.isSet && trainer.stepsDone < trainer.totalSteps {
            emit(.cancelled(step: trainer.stepsDone))
            setStatus("cancelled")
            throw StudioError.cancelled("tune cancelled at step \(trainer.stepsDone) with a checkpoint; continue with: troupe tune \(kind) \"\(record.name)\" --resume")
        }
        let outputs: [String]
        do { outputs = try job.save() } catch { emit(.failed(reason: "\(error)")); setStatus("failed"); throw StudioError.wrap(error) }
        setStatus("finished")
        emit(.finished(step: trainer.stepsDone, outputs: outputs))
        if !json { outputs.forEach { print($0) } }
    }
}
