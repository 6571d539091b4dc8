// `troupe identity`: the identity embedding (design §4). `train-encoder` trains the
// IdentityEncoder on the World and reports top-1 identity retrieval on held-out characters,
// on renders and on their round trips through a model's VAE (what generated images look
// like to it). `train` trains the identity adapter (IP-Adapter-style decoupled cross-attention
// fed by the encoder's vector) on the World for one model, as a resumable run.

import ArgumentParser
import Foundation
import Pipeline

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identity", abstract: "The identity embedding: encoder and adapter.",
                                                    subcommands: [TrainEncoder.self, TrainAdapter.self, Show.self])

    struct TrainEncoder: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "train-encoder",
                                                        abstract: "Train the IdentityEncoder on the World (contrastive) and report held-out retrieval.")
        @Option(help: "Output safetensors file.")
        var out: String
        @Option(help: "Training steps.")
        var steps = 3000
        @Option(help: "Identities per step (two scenes each).")
        var batch = 48
        @Option(name: .customLong("learning-rate"), help: "Peak AdamW learning rate (warm-up + cosine).")
        var learningRate: Float = 2e-3
        @Option(name: .customLong("eval-count"), help: "Held-out identities for the retrieval test.")
        var evalCount = 1000
        @Option(help: "Model whose VAE round trip the retrieval test also uses (default: troupe-mini).")
        var model: String?
        @Flag(help: "Print one JSON object on stdout.")
        var json = false

        func run() throws {
            guard steps > 0, batch >= 2, evalCount >= 2 else { throw StudioError.badInput("--steps > 0, --batch ≥ 2 and --eval-count ≥ 2") }
            let interrupt = InterruptFlag.install()
            let progress = ProgressLine(label: "identity train-encoder", quiet: false)
            let start = Date()
            var cfg = IdentityEncoderTraining()
            cfg.steps = steps; cfg.batch = batch; cfg.learningRate = learningRate
            var last: Float = 0
            let encoder: IdentityEncoder
            do { encoder = try cfg.run { step, loss in
                last = loss
                if step % 10 == 0 || step == steps { progress.update(step: step, total: steps, extra: String(format: "loss %.3f", loss)) }
                return !interrupt.isSet
            } } catch { throw StudioError.wrap(error) }
            progress.finish()
            let renders = IdentityEncoderTraining.retrieval(encoder, evalSeed: 7007, count: evalCount)
            let (pipe, modelName) = try ModelLocator.loadPipeline(model)
            let roundTrips = IdentityEncoderTraining.retrieval(encoder, evalSeed: 7007, count: evalCount) { x in
                GradMode.noGrad { pipe.vae.decode(pipe.vae.encode(x).mean).clamped(-1, 1) }
            }
            let seconds = Date().timeIntervalSince(start)
            do {
                try encoder.save(to: out, metadata: ["world_seed": String(cfg.worldSeed), "init_seed": String(cfg.initSeed), "steps": String(steps),
                                                     "batch": String(batch), "temperature": String(cfg.temperature), "final_loss": String(last),
                                                     "retrieval_renders": String(renders), "retrieval_vae_round_trip": String(roundTrips),
                                                     "round_trip_model": modelName, "seconds": String(format: "%.0f", seconds)])
            } catch { throw StudioError.wrap(error) }
            if json {
                try printJSON(["out": out, "seconds": seconds, "final_loss": last, "retrieval_renders": renders, "retrieval_vae_round_trip": roundTrips])
            } else {
                print(String(format: "top-1 retrieval, %d held-out identities: renders %.3f, %@ VAE round trips %.3f", evalCount, renders, modelName, roundTrips))
                print(String(format: "final loss %.4f, %.0f s, saved %@", last, seconds, out))
            }
        }
    }

    struct TrainAdapter: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "train",
                                                        abstract: "Train the identity adapter for a model on the World (resumable; checkpoints, metrics.jsonl, adapter.safetensors).")
        @OptionGroup var runOptions: TrainingRunOptions
        @Option(help: "Diffusers model folder the adapter is for (default: troupe-mini; new runs only).")
        var model: String?
        @Option(help: "IdentityEncoder weights (default: models/identity/encoder.safetensors; new runs only).")
        var encoder: String?
        @Option(help: "Training judge for the identity-attribute term (default: models/judges/attributes-train.safetensors).")
        var judge: String?
        @Option(name: .customLong("judge-weight"), help: "Weight of the training judge's identity-attribute term on x̂₀ (0: IP-Adapter's ε loss alone; new runs only).")
        var judgeWeight: Float?
        @Option(name: .customLong("judge-max-timestep"), help: "The identity-attribute term applies to rows noised below this timestep (higher reaches the coarse shapes, e.g. hair style, that high noise levels decide). With --resume: branch a copy of the run folder first.")
        var judgeMaxTimestep: Int?
        @Option(name: .customLong("context-weight"), help: "Weight of the training judge's context-attribute term (the target's pose, expression, background and view on x̂₀, so the adapter carries who and never how or where; 0: off). With --resume: branch a copy of the run folder first.")
        var contextWeight: Float?
        @Option(help: "Steps in total (a resumed run may raise it).")
        var steps: Int?
        @Option(help: "World samples per step (new runs only).")
        var batch: Int?
        @Option(name: .customLong("learning-rate"), help: "AdamW learning rate (new runs only).")
        var learningRate: Float?
        @Option(name: .customLong("decay-steps"), help: "Cool the learning rate to 0 over the last N steps of --steps (1 − sqrt cooldown); 0 keeps it constant. With --resume: branch a copy of the run folder, then cool it down.")
        var decaySteps: Int?
        @Flag(inversion: .prefixedNo, help: "Spatial tokens too: the IdentityEncoder's 8×8 feature map, one token per position, through a second decoupled attention (new runs only; with --init-from a pooled-only adapter, the run starts exactly where it is). --no-spatial: a plain IP-Adapter (four pooled tokens).")
        var spatial: Bool?
        @Option(name: .customLong("init-from"), help: "Start from this adapter's weights (new runs only): re-fit the adapter of an earlier checkpoint of the same base model after the base trained on.")
        var initFrom: String?

        /// What a run folder records about its inputs (so --resume needs only --out).
        struct RunInputs: Codable { var model: String?; var encoder: String; var judge: String?; var initFrom: String? }

        func run() throws {
            let out = runOptions.out, resume = runOptions.resume
            let runFile = out + "/run.json"
            let inputs: RunInputs
            if resume {
                guard let data = FileManager.default.contents(atPath: runFile), let r = try? JSONDecoder().decode(RunInputs.self, from: data) else {
                    throw StudioError.badInput("\(out) holds no identity-adapter run (no readable run.json); start one without --resume")
                }
                guard model == nil, encoder == nil, judge == nil, judgeWeight == nil, batch == nil, learningRate == nil, initFrom == nil, spatial == nil else {
                    throw StudioError.badInput("--model, --encoder, --judge, --judge-weight, --batch, --learning-rate, --init-from and --[no-]spatial are fixed by the run; with --resume only --steps, --decay-steps, --judge-max-timestep, --context-weight, --checkpoint-every and --stop-after apply")
                }
                inputs = r
            } else {
                guard let e = encoder ?? ModelLocator.locate(ModelLocator.identityEncoderFile) else {
                    throw StudioError.badInput("the IdentityEncoder (models/identity/encoder.safetensors) was not found; pass --encoder FILE")
                }
                let weight = judgeWeight ?? IdentityAdapterConfig().judgeWeight
                var judgePath: String? = nil
                if weight > 0 || (contextWeight ?? IdentityAdapterConfig().contextWeight) > 0 {
                    guard let j = judge ?? ModelLocator.locate(ModelLocator.trainingJudgeFile) else {
                        throw StudioError.badInput("the training judge (models/judges/attributes-train.safetensors) was not found; pass --judge FILE, or --judge-weight 0 and --context-weight 0")
                    }
                    judgePath = (j as NSString).standardizingPath
                }
                inputs = RunInputs(model: model, encoder: (e as NSString).standardizingPath, judge: judgePath,
                                   initFrom: initFrom.map { ($0 as NSString).standardizingPath })
            }
            let (pipe, modelName) = try ModelLocator.loadPipeline(inputs.model)
            let enc: IdentityEncoder
            do { enc = try IdentityEncoder(weights: WeightReader(paths: [inputs.encoder])) } catch { throw StudioError.badInput("\(inputs.encoder): \(error)") }
            let judgeModel = try inputs.judge.map { try ModelLocator.loadJudge($0) }
            let trainer: IdentityAdapterTrainer
            do {
                if resume {
                    trainer = try IdentityAdapterTrainer.resume(pipeline: pipe, encoder: enc, judge: judgeModel, directory: out)
                    if let steps { trainer.extend(steps: steps) }
                    try trainer.reconfigure(checkpointEvery: runOptions.checkpointEvery, decaySteps: decaySteps, judgeMaxTimestep: judgeMaxTimestep, contextWeight: contextWeight)
                } else {
                    var cfg = IdentityAdapterConfig()
                    if let steps { cfg.steps = steps }
                    if let batch { cfg.batch = batch }
                    if let learningRate { cfg.learningRate = learningRate }
                    if let every = runOptions.checkpointEvery { cfg.checkpointEvery = every }
                    if let decaySteps { cfg.decaySteps = decaySteps }
                    if let judgeWeight { cfg.judgeWeight = judgeWeight }
                    if let judgeMaxTimestep { cfg.judgeMaxTimestep = judgeMaxTimestep }
                    if let contextWeight { cfg.contextWeight = contextWeight }
                    if let spatial { cfg.spatial = spatial }
                    try cfg.validate()    // before the folder is claimed: a refused run leaves nothing behind
                    // Read before the folder is claimed too; its model may differ (that is the point).
                    let start = try inputs.initFrom.map { try IdentityAdapter.load(path: $0, unet: pipe.unet) }
                    try TrainingConsole.claimNewRun(out)
                    try AtomicFile.write(JSONEncoder().encode(inputs), to: runFile)
                    trainer = try IdentityAdapterTrainer(pipeline: pipe, encoder: enc, judge: judgeModel, config: cfg, directory: out)
                    if let start { try trainer.start(from: start) }
                }
            } catch let e as StudioError { throw e } catch { throw StudioError.wrap(error) }
            FileHandle.standardError.write(Data("identity train: adapter for \(modelName), \(trainer.adapter.layers.count) cross-attention layers; step \(trainer.stepsDone) of \(trainer.totalSteps)\n".utf8))
            let console = try runOptions.train(trainer, command: "identity train")
            let finished = trainer.stepsDone >= trainer.totalSteps
            if finished {
                do {
                    var extra = ["model_name": modelName, "encoder": (inputs.encoder as NSString).lastPathComponent]
                    if let from = inputs.initFrom { extra["init_from"] = (from as NSString).lastPathComponent }
                    try trainer.saveAdapter(to: out + "/adapter.safetensors", extra: extra)
                } catch { throw StudioError.wrap(error) }
            }
            var fields: [String: Any] = ["step": trainer.stepsDone, "steps": trainer.totalSteps, "model": modelName]
            if finished { fields["adapter"] = out + "/adapter.safetensors" }
            try runOptions.report(command: "identity train", console: console, finished: finished, result: "adapter in \(out)/adapter.safetensors",
                                  position: "step \(trainer.stepsDone)", fields: fields)
        }
    }
}
