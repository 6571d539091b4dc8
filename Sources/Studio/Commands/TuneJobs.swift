// What each `tune` kind trains and writes: its trainer (new, or resumed from the run's last
// checkpoint, or restarted from the run's config.json when it died before its first one), a
// preview for the event stream, and the files it leaves in the character's folder.

import Foundation
import Pipeline
import Preview

struct TuneJob {
    let trainer: Trainer
    /// Writes the run's result into the character's folder; returns the paths written.
    let save: () throws -> [String]
    /// One sample with the tuning so far; returns its PNG path.
    let preview: (Int) throws -> String
}

struct TuneSetup {
    let command: Tune
    let record: CharacterRecord
    let folder: String
    let runDir: String
    let pipeline: StableDiffusionPipeline
    let interrupt: InterruptFlag

    /// The run's own config: a new run writes it; a resumed one reads it back.
    func config<C: Codable>(_ fresh: () throws -> C) throws -> C {
        let path = runDir + "/config.json"
        if command.resume {
            guard let data = FileManager.default.contents(atPath: path), let c = try? JSONDecoder().decode(C.self, from: data) else {
                throw StudioError.badInput("\(runDir): no readable config.json; start a new run without --resume")
            }
            return c
        }
        let c = try fresh()
        try AtomicFile.write(try JSONEncoder().encode(c), to: path)
        return c
    }

    /// Where a stage run's LoRA goes: lora/, or a soup member's lora/soup/<k>/.
    static func loraDirectory(_ folder: String, member: Int?) -> String { member.map { folder + "/lora/soup/\($0)" } ?? folder + "/lora" }
    var loraDirectory: String { Self.loraDirectory(folder, member: command.member) }

    var hasCheckpoint: Bool { command.resume && TrainingCheckpoint(directory: runDir).latest != nil }

    func samplePath(_ step: Int) -> String { runDir + String(format: "/samples/step-%06d.png", step) }

    func writeSample(_ out: GenerationResult, _ step: Int) throws -> String {
        let path = samplePath(step)
        try PNGCodec.write(RGBImage(width: out.width, height: out.height, pixels: out.images[0]), to: path)
        return path
    }

    /// The character's prompt, seed and guidance; `throughLoRA`: sampled through a stage LoRA
    /// (its samples), which the model may recommend another guidance scale for.
    func characterRequest(steps: Int? = nil, throughLoRA: Bool = false) -> GenerationRequest {
        var req = pipeline.request(prompt: record.prompt)
        req.negativePrompt = record.negativePrompt
        req.seed = record.seed
        req.guidanceScale = record.settings.guidanceScale(defaults: pipeline.defaults, characterLoRA: throughLoRA)
        if let steps { req.steps = steps }
        return req
    }

    // MARK: stage 1

    func references() throws -> [Tensor] {
        try record.references.map { entry in
            do { return ImageTensors.tensor(from: try PNGCodec.read(path: folder + "/" + entry.file)) } catch {
                throw StudioError.badInput("\(folder)/\(entry.file): \(error)")
            }
        }
    }

    /// The command's flags over `c` (steps, rank, learning rate, checkpoints, augmentation), checked.
    func applyFlags(_ c: inout AppearanceTuningConfig) throws {
        if let s = command.steps { c.steps = s }
        if let r = command.rank { c.rank = r }
        if let r = command.textEncoderRank { c.textEncoderRank = r }
        if let r = command.convRank { c.convRank = r }
        if let r = command.feedForwardRank { c.feedForwardRank = r }
        if let lr = command.learningRate { c.learningRate = lr }
        if let g = command.snrGamma { c.snrGamma = g }
        if let k = command.summaryOffset { c.summaryOffsetLearningRateScale = k }
        if command.poseView { c.poseRowsNameView = true }
        if let n = command.checkpointEvery { c.checkpointEvery = n }
        if let x = command.crop { c.augmentation.crop = x }
        if let x = command.colorJitter { c.augmentation.colorJitter = x }
        do { _ = try c.augmentation.validated() } catch { throw StudioError.badInput("--crop and --color-jitter must be in 0…0.5") }
        c.seed = AppearanceTuningConfig.soupMemberSeed(record.seed, member: command.member ?? 0)
        guard c.steps >= 1, c.rank >= 1, c.checkpointEvery >= 1, c.learningRate.isFinite, c.learningRate > 0 else {
            throw StudioError.badInput("--steps, --rank and --checkpoint-every must be ≥ 1 and --learning-rate a positive number")
        }
        guard c.snrGamma.isFinite, c.snrGamma >= 0 else { throw StudioError.badInput("--snr-gamma must be a number ≥ 0 (0: off)") }
        guard c.summaryOffsetLearningRateScale.isFinite, (0...10_000).contains(c.summaryOffsetLearningRateScale) else {
            throw StudioError.badInput("--summary-offset must be a number in 0…10000 (0: off)")
        }
        let ranks = AppearanceTuningConfig.optionalRanks
        for (flag, r) in [("--text-encoder-rank", c.textEncoderRank), ("--conv-rank", c.convRank), ("--ff-rank", c.feedForwardRank)] where !ranks.contains(r) {
            throw StudioError.badInput("\(flag) must be in \(ranks.lowerBound)…\(ranks.upperBound)")
        }
    }

    func stageJob(_ tuner: AppearanceTuner, stage: Int) -> TuneJob {
        TuneJob(trainer: tuner, save: {
            let out = loraDirectory + "/stage\(stage).safetensors"
            try FileManager.default.createDirectory(atPath: loraDirectory, withIntermediateDirectories: true)
            try tuner.saveLoRA(to: out)
            return [out]
        }, preview: { step in
            // As `generate --character` will sample it: the model's multiplier for a stage LoRA
            // (the tuner's adapters train at 1 and go back to it), its summary offset.
            let adapters = LoRASet.tuned(on: pipeline)
            adapters.rescale(pipeline.defaults.stageLoRAScale)
            defer { adapters.rescale(1) }
            let req = characterRequest(steps: 15, throughLoRA: true)
            let conditioning = try tuner.summaryOffset.map {
                try $0.apply(to: try pipeline.encodePrompts(try pipeline.validate(req).request), prompt: req.prompt, tokenizer: pipeline.tokenizer,
                             loraMultiplier: pipeline.defaults.stageLoRAScale)
            }
            return try writeSample(try pipeline.generate(req, conditioning: conditioning), step)
        })
    }

    func stage1() throws -> TuneJob {
        let refs = try references()
        let tuner: AppearanceTuner
        if hasCheckpoint {
            tuner = try AppearanceTuner.resume(pipeline: pipeline, references: refs, directory: runDir, baseWord: record.baseWord)
        } else {
            let c = try config { () -> AppearanceTuningConfig in
                var c = AppearanceTuningConfig.recommended(by: pipeline.defaults)
                try applyFlags(&c)
                return c
            }
            tuner = try AppearanceTuner(pipeline: pipeline, references: refs, prompt: record.prompt, config: c, directory: runDir,
                                        baseWord: record.baseWord)
        }
        return stageJob(tuner, stage: 1)
    }

    // MARK: stages 2 and 3


    /// Stage 2 or 3: the previous stage's adapters continued. Stage 2 adds the identity term
    /// (the IdentityEncoder shipped for World-like 64×64 models) and prior preservation on class
    /// images the base model draws from "a <base word>" before any adapter is attached; stage 3
    /// adds the training judge's pose/expression term (64×64 World models only).
    func laterStage(_ stage: Int) throws -> TuneJob {
        let refs = try references()
        let previousPath = loraDirectory + "/stage\(stage - 1).safetensors"
        guard FileManager.default.fileExists(atPath: previousPath) else {
            throw StudioError.badInput("\(record.name) has no stage-\(stage - 1) LoRA yet; run `troupe tune stage\(stage - 1) \(record.name)` first")
        }
        let encoder = readsWorldSprites ? try ModelLocator.identityEncoder() : nil
        var judge: AttributeClassifier? = nil
        if stage >= 3 {
            guard readsWorldSprites, let j = try ModelLocator.trainingJudge() else {
                throw StudioError.badInput("stage 3 needs the training judge for this model's images (models/judges/attributes-train.safetensors reads \(World.imageSize)×\(World.imageSize) World sprites)")
            }
            judge = j
        }
        let classPrompt = PriorPreservation.classPrompt(baseWord: record.baseWord)
        let classImages = try PriorPreservation.classImages(pipeline: pipeline, baseWord: record.baseWord)
        let tuner: AppearanceTuner
        if hasCheckpoint {
            tuner = try AppearanceTuner.resume(pipeline: pipeline, references: refs, directory: runDir, identityEncoder: encoder,
                                               classImages: classImages, classPrompt: classPrompt, judge: judge, baseWord: record.baseWord)
        } else {
            let start: [String: Tensor]
            let previousOffsetRate: Float?
            do {
                let f = try SafetensorsFile(path: previousPath)
                start = try Dictionary(uniqueKeysWithValues: f.entries.keys.map { ($0, try f.tensor($0).clone()) })
                // The previous stage's summary offset, continued at the rate it was tuned at.
                previousOffsetRate = try SummaryOffset.read(from: f).map { $0.learningRateScale ?? pipeline.defaults.loraSummaryOffset ?? 1 }
            } catch { throw StudioError.wrap(error) }
            // The previous stage's ranks, read from its file: attention (2-D down), feed-forward
            // (2-D, under .ff.), convolutions (4-D down), text encoder; a family it lacks stays off.
            func rank(_ component: String, _ dims: Int, feedForward: Bool = false) -> Int {
                start.first {
                    $0.key.hasPrefix(component) && $0.key.hasSuffix("lora_A.weight") && $0.value.rank == dims
                        && AppearanceTuner.isFeedForwardTarget($0.key) == feedForward
                }?.value.shape[0] ?? 0
            }
            let c = try config { () -> AppearanceTuningConfig in
                var base = AppearanceTuningConfig.recommended(by: pipeline.defaults)
                let attention = rank("unet.", 2)
                if attention > 0 { base.rank = attention }     // none: the tuner names the key it lacks
                base.convRank = rank("unet.", 4); base.textEncoderRank = rank("text_encoder.", 2)
                base.feedForwardRank = rank("unet.", 2, feedForward: true)
                base.summaryOffsetLearningRateScale = previousOffsetRate ?? 0
                var c = AppearanceTuningConfig.stage2(from: base, hasIdentityEncoder: encoder != nil)
                if stage >= 3 { c = AppearanceTuningConfig.stage3(from: c, hasJudge: judge != nil) }
                try applyFlags(&c)
                return c
            }
            tuner = try AppearanceTuner(pipeline: pipeline, references: refs, prompt: record.prompt, config: c, directory: runDir,
                                        startFrom: start, identityEncoder: encoder, classImages: classImages, classPrompt: classPrompt, judge: judge,
                                        baseWord: record.baseWord)
        }
        return stageJob(tuner, stage: stage)
    }

    /// Whether the model makes images the shipped IdentityEncoder and judges read (64×64 World
    /// sprites): the one check before any World-specific loss term.
    var readsWorldSprites: Bool { pipeline.vae.config.sampleSize == World.imageSize }

    // MARK: OneActor

    var clusterPath: String { folder + "/oneactor/cluster.safetensors" }
    var projectorPath: String { folder + "/oneactor/projector.safetensors" }

    func oneactor() throws -> TuneJob {
        let fingerprint = pipeline.fingerprint
        let c = try config { () -> OneActorRunConfig in
            var c = OneActorRunConfig()
            c.tuning = OneActorConfig.recommended(by: pipeline.defaults)
            if let s = command.steps { c.tuning.steps = s }
            if let n = command.auxiliaries { c.auxiliaries = n }
            if let lr = command.learningRate { c.tuning.learningRate = lr }
            if let n = command.checkpointEvery { c.tuning.checkpointEvery = n }
            if let w = command.poseWeight {
                guard w.isFinite, w >= 0 else { throw StudioError.badInput("--pose-weight must be ≥ 0") }
                c.tuning.poseWeight = w
            }
            if let w = command.identityWeight {
                guard w.isFinite, w >= 0 else { throw StudioError.badInput("--identity-weight must be ≥ 0") }
                c.tuning.identityWeight = w
            }
            if let k = command.draws {
                guard (1...16).contains(k) else { throw StudioError.badInput("--draws must be in 1…16") }
                c.tuning.drawsPerRow = k
            }
            if let t = command.timesteps {
                let parts = t.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 2, parts[0] >= 0, parts[0] < parts[1], parts[1] <= 1000 else { throw StudioError.badInput("--timesteps takes A:B with 0 ≤ A < B ≤ 1000") }
                c.tuning.minTimestep = parts[0]; c.tuning.maxTimestep = parts[1]
            }
            if let site = command.offsetSite {
                guard let s = OffsetSite(rawValue: site) else { throw StudioError.badInput("--offset-site must be \(OffsetSite.choices)") }
                c.tuning.offsetSite = s
            }
            c.tuning.seed = record.seed
            guard c.tuning.steps >= 1, c.tuning.checkpointEvery >= 1, (1...64).contains(c.auxiliaries),
                  c.tuning.learningRate.isFinite, c.tuning.learningRate > 0 else {
                throw StudioError.badInput("--steps and --checkpoint-every must be ≥ 1, --auxiliaries in 1…64, --learning-rate a positive number")
            }
            return c
        }
        // The identity term reads the target through the IdentityEncoder (64×64 World-like images).
        var encoder: IdentityEncoder? = nil
        if c.tuning.identityWeight > 0 {
            guard readsWorldSprites, let e = try ModelLocator.identityEncoder() else {
                throw StudioError.badInput("--identity-weight needs the IdentityEncoder (models/identity/encoder.safetensors), which reads \(World.imageSize)×\(World.imageSize) images; this model makes \(pipeline.vae.config.sampleSize)×\(pipeline.vae.config.sampleSize)")
            }
            encoder = e
        }
        // The pose/expression term: the training judge reads 64×64 World sprites.
        var judge: AttributeClassifier? = nil
        if c.tuning.poseWeight > 0 {
            guard readsWorldSprites, let j = try ModelLocator.trainingJudge() else {
                throw StudioError.badInput("--pose-weight needs the training judge (\(ModelLocator.trainingJudgeFile) under models/), which reads \(World.imageSize)×\(World.imageSize) World sprites; this model makes \(pipeline.vae.config.sampleSize)×\(pipeline.vae.config.sampleSize)")
            }
            judge = j
        }
        // Cluster data: made once per run (kept in the run folder, then in oneactor/), refused
        // when it belongs to another model.
        let runCluster = runDir + "/cluster.safetensors"
        let cluster: OneActorCluster
        if FileManager.default.fileExists(atPath: runCluster) {
            cluster = try OneActorCluster.load(path: runCluster, model: fingerprint)
        } else {
            var target: Tensor? = nil
            if let file = record.target {
                do { target = ImageTensors.tensor(from: try PNGCodec.read(path: folder + "/" + file)) } catch {
                    throw StudioError.badInput("\(folder)/\(file) (the character's target): \(error)")
                }
            }
            let progress = ProgressLine(label: "oneactor samples", quiet: command.json)
            cluster = try OneActorCluster.build(pipeline: pipeline, request: characterRequest(), baseWord: record.baseWord, targetImage: target,
                                                auxiliaries: c.auxiliaries, model: fingerprint) { done, total in
                progress.update(step: done, total: total)
                return !interrupt.isSet
            }
            progress.finish()
            try cluster.save(to: runCluster)
        }
        let tuner = hasCheckpoint ? try OneActorTuner.resume(pipeline: pipeline, cluster: cluster, directory: runDir, identityEncoder: encoder, judge: judge)
                                  : try OneActorTuner(pipeline: pipeline, cluster: cluster, config: c.tuning, directory: runDir, identityEncoder: encoder, judge: judge)
        return TuneJob(trainer: tuner, save: {
            try FileManager.default.createDirectory(atPath: folder + "/oneactor", withIntermediateDirectories: true)
            // Both new files are written in full before either replaces its old one, so a write
            // that fails (a full disk) leaves the old pair; then two renames, cluster first.
            do {
                try tuner.saveProjector(to: projectorPath + ".new")
                try cluster.save(to: clusterPath + ".new")
            } catch {
                for p in [projectorPath, clusterPath] { try? FileManager.default.removeItem(atPath: p + ".new") }
                throw error
            }
            for p in [clusterPath, projectorPath] where Foundation.rename(p + ".new", p) != 0 {
                throw StudioError.failed("\(p): cannot move the new file in place (\(String(cString: strerror(errno))))")
            }
            return [projectorPath, clusterPath]
        }, preview: { step in
            let adapter = OneActorAdapter(projector: tuner.projector, cluster: cluster, site: tuner.state.config.offsetSite)
            let req = characterRequest(steps: 15)
            let cond = try adapter.conditioning(for: req, pipeline: pipeline, v: record.settings.v)
            return try writeSample(try pipeline.generate(req, conditioning: cond), step)
        })
    }
}

/// A OneActor run's config.json.
struct OneActorRunConfig: Codable {
    var tuning = OneActorConfig()
    var auxiliaries = 10
}
