// `troupe bench tune --method oneactor|stage1 [--preset mini|sd15]`: tuning speed.
//   mini: the whole OneActor job on troupe-mini from a new character — cluster data (its target
//         and 10 auxiliaries generated, features taken) and the projector steps `tune oneactor`
//         runs there (the model's recommended settings and terms; target < 60 s on 2 cores);
//         stage1 (stage2, stage3): 500 LoRA steps on two references with the model's recommended
//         settings for that stage (its summary offset at the prompt's base word); stage1 with
//         `--breakdown`: the same steps again without the LoCon adapters, without the
//         reconstruction term, and without both (each component's cost, measured in the same run).
//         `--steps K` runs fewer (a check that the job runs).
//   sd15: seconds per tuning step and peak RSS on an SD 1.5-shaped model with random weights at
//         512² (64×64 latents, CLIP-L width), with random cluster data of the right shapes (making
//         real cluster data there means eleven 512² generations).

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct BenchTune: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tune", abstract: "Tuning speed: OneActor or stage 1, on troupe-mini or an SD 1.5 shape.")

    @Option(help: "mini (the embedded model, the whole job) or sd15 (random SD 1.5-shaped weights, seconds per step).")
    var preset = "mini"
    @Option(help: "oneactor, stage1, stage2 or stage3.")
    var method = "oneactor"
    @Option(help: "mini: tuning steps (default: OneActor's recommended count, the stages' 500) — fewer for a quick check that the job runs.")
    var steps: Int?
    @Option(help: "sd15: timed steps after one warm-up step.")
    var repeats = 2
    @Flag(help: "mini stage1: also time the steps without LoCon, without the reconstruction term and without both.")
    var breakdown = false
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func say(_ s: String) { FileHandle.standardError.write(Data((s + "\n").utf8)) }

    func run() throws {
        // Refused before anything loads or runs.
        guard let kind = TuneKind(rawValue: method) else { throw StudioError.badInput("--method must be oneactor, stage1, stage2 or stage3") }
        guard steps.map({ $0 >= 1 }) ?? true else { throw StudioError.badInput("--steps must be at least 1") }
        guard steps == nil || preset == "mini" else { throw StudioError.badInput("--steps times --preset mini; sd15 times --repeats steps") }
        guard !breakdown || (kind == .stage1 && preset == "mini") else { throw StudioError.badInput("--breakdown times --preset mini --method stage1 only") }
        let dir = NSTemporaryDirectory() + "troupe-bench-tune-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var obj: [String: Any] = ["method": method, "preset": preset, "threads": BLAS.threads]
        do {
            switch preset {
            case "mini": try mini(kind, dir, &obj)
            case "sd15": try sd15(kind, dir, &obj)
            default: throw StudioError.badInput("--preset must be mini or sd15")
            }
        } catch let e as StudioError { throw e } catch { throw StudioError.wrap(error) }
        obj["peak_rss_mb"] = PeakMemory.megabytes
        if json { try printJSON(obj) } else {
            print(obj.keys.sorted().map { "\($0): \(obj[$0]!)" }.joined(separator: "\n"))
        }
    }

    func mini(_ kind: TuneKind, _ dir: String, _ obj: inout [String: Any]) throws {
        let (pipe, _) = try ModelLocator.loadPipeline(nil)
        // The prompt's base word: OneActor's offset, the stages' summary offset and class images go there.
        let baseWord = "knight"
        var r = pipe.request(prompt: "a knight with red hair waving, smiling, in a forest, front view")
        r.seed = 7
        let t0 = Date()
        switch kind {
        case .oneactor:
            say("cluster data: target + 10 auxiliaries")
            let cluster = try OneActorCluster.build(pipeline: pipe, request: r, baseWord: baseWord, targetImage: nil, auxiliaries: 10, model: pipe.fingerprint)
            let t1 = Date()
            // What `tune oneactor` runs on this model: its recommended settings and terms.
            var config = OneActorConfig.recommended(by: pipe.defaults)
            if let steps { config.steps = steps }
            say("\(config.steps) projector steps (\(config.offsetSite.rawValue) site, identity weight \(config.identityWeight), pose weight \(config.poseWeight))")
            let tuner = try OneActorTuner(pipeline: pipe, cluster: cluster, config: config, directory: dir,
                                          identityEncoder: config.identityWeight > 0 ? try ModelLocator.identityEncoder() : nil,
                                          judge: config.poseWeight > 0 ? try ModelLocator.trainingJudge() : nil)
            try TrainingLoop.run(tuner) { _ in true }
            obj["cluster_seconds"] = t1.timeIntervalSince(t0)
            obj["tune_seconds"] = Date().timeIntervalSince(t1)
            obj["steps"] = tuner.stepsDone
        case .stage1, .stage2, .stage3:
            r.count = 2
            let refs = try pipe.generate(r).images.map { ImageTensors.tensor(from: RGBImage(width: 64, height: 64, pixels: $0)) }
            var classImages: [Tensor] = [], encoder: IdentityEncoder? = nil
            var judge: AttributeClassifier? = nil
            if kind == .stage3 { judge = try ModelLocator.trainingJudge() }
            if kind != .stage1 {
                classImages = try PriorPreservation.classImages(pipeline: pipe, baseWord: baseWord)
                encoder = try ModelLocator.identityEncoder()
            }
            let n = steps ?? 500
            var c = AppearanceTuningConfig.recommended(by: pipe.defaults); c.steps = n; c.checkpointEvery = n
            if kind != .stage1 { c = AppearanceTuningConfig.stage2(from: c, hasIdentityEncoder: encoder != nil); c.steps = n }
            if kind == .stage3 { c = AppearanceTuningConfig.stage3(from: c, hasJudge: judge != nil) }
            /// Seconds for the steps of `config` in a fresh run folder (adapters detached after).
            func timed(_ config: AppearanceTuningConfig, _ name: String) throws -> Double {
                let t = Date()
                let tuner = try AppearanceTuner(pipeline: pipe, references: refs, prompt: r.prompt, config: config, directory: dir + "/" + name,
                                                identityEncoder: encoder, classImages: classImages, classPrompt: PriorPreservation.classPrompt(baseWord: baseWord), judge: judge,
                                                baseWord: baseWord)
                defer { LoRASet.tuned(on: pipe).detach() }
                try TrainingLoop.run(tuner) { _ in true }
                obj["steps"] = tuner.stepsDone
                return Date().timeIntervalSince(t)
            }
            obj["tune_seconds"] = try timed(c, "default")
            obj["seconds"] = Date().timeIntervalSince(t0)
            if breakdown {
                var noLoCon = c; noLoCon.convRank = 0
                var noRec = c; noRec.reconstructionWeight = 0
                var neither = noLoCon; neither.reconstructionWeight = 0
                say("again without LoCon, without the reconstruction term, without both")
                obj["tune_seconds_without_locon"] = try timed(noLoCon, "no-locon")
                obj["tune_seconds_without_reconstruction"] = try timed(noRec, "no-reconstruction")
                obj["tune_seconds_attention_only"] = try timed(neither, "attention-only")
            }
            return
        }
        obj["seconds"] = Date().timeIntervalSince(t0)
    }

    func sd15(_ kind: TuneKind, _ dir: String, _ obj: inout [String: Any]) throws {
        say("building an SD 1.5-shaped pipeline with random weights")
        let unetConfig = UNetConfig()
        let pipe = StableDiffusionPipeline(
            tokenizer: try CLIPTokenizer(directory: ModelLocator.clipTokenizer(for: "bench tune")),
            textEncoder: try CLIPTextModel(config: CLIPTextConfig(), weights: WeightReader(randomSeed: 1)),
            unet: try UNet2DConditionModel(config: unetConfig, weights: WeightReader(randomSeed: 2)),
            vae: try AutoencoderKL(config: VAEConfig(), weights: WeightReader(randomSeed: 3)),
            schedulerConfig: .stableDiffusion1, name: "sd15-random")
        var rng = SplitMixRandom(seed: 4)
        let steps = 1 + max(1, repeats)
        let trainer: Trainer
        switch kind {
        case .oneactor:
            let mid = unetConfig.blockOutChannels.last!
            let cluster = OneActorCluster(latents: Tensor.randn([11, 4, 64, 64], using: &rng), features: Tensor.randn([11, mid, 8, 8], using: &rng),
                                          prompt: "a photo of a knight", baseWord: "knight", model: pipe.fingerprint, featureTimestep: 50)
            var c = OneActorConfig(); c.steps = steps; c.checkpointEvery = 1000
            trainer = try OneActorTuner(pipeline: pipe, cluster: cluster, config: c, directory: dir)
        case .stage1, .stage2, .stage3:
            // On SD 1.5 shapes stage 3 is timed as stage 2: the World judge reads 64×64 sprites only.
            var c = AppearanceTuningConfig(); c.steps = steps; c.checkpointEvery = 1000; c.batch = 1
            // Stage 2 on SD 1.5: prior preservation with one class image; the identity encoder is World-only (64×64).
            if kind != .stage1 { c = AppearanceTuningConfig.stage2(from: c, hasIdentityEncoder: false); c.steps = steps; c.batch = 1 }
            let classImages = kind != .stage1 ? [Tensor.rand([1, 3, 512, 512], low: -1, high: 1, using: &rng)] : []
            trainer = try AppearanceTuner(pipeline: pipe, references: [Tensor.rand([1, 3, 512, 512], low: -1, high: 1, using: &rng)],
                                          prompt: "a photo of a knight", config: c, directory: dir,
                                          classImages: classImages, classPrompt: kind != .stage1 ? "a photo of a knight" : nil)
        }
        var times: [Double] = []
        var last = Date()
        try TrainingLoop.run(trainer) { e in
            if e.kind == .step { times.append(Date().timeIntervalSince(last)); say("step \(e.step): \(String(format: "%.1f", times.last!)) s"); last = Date() }
            return true
        }
        obj["seconds_per_step"] = times.dropFirst().min() ?? times.last!
        obj["steps"] = times.count
        obj["seconds"] = times.reduce(0, +)
    }
}
