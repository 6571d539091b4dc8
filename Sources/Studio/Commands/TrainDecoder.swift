// `troupe train-decoder`: sharpens a model's VAE decoder (encoder frozen, so the UNet's latent
// space is unchanged). Same run-folder shape and habits as train-base: checkpoints every N steps
// and on Ctrl-C, exact `--resume`, progress on stderr, DIR/metrics.jsonl, and DIR/model: the
// source model with the tuned VAE. `--resume --model NEWER` re-attaches the tuned decoder to a
// later export of the same base run (refused when its encoder differs).

import ArgumentParser
import Foundation
import Pipeline

struct TrainDecoder: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-decoder",
                                                    abstract: "Fine-tune a model's VAE decoder on the World (encoder frozen).")

    @OptionGroup var runOptions: TrainingRunOptions
    @Option(help: "Diffusers folder whose decoder is tuned (new runs); with --resume, a later export of the same base run to attach the decoder to.")
    var model: String?
    @Option(help: "Training judge whose features give the perceptual loss (default: models/judges/attributes-train.safetensors).")
    var judge: String?
    @Option(help: "Steps in total (a resumed run may raise it).")
    var steps: Int?
    @Option(help: "Batch size (new runs only).")
    var batch: Int?
    @Option(name: .customLong("perceptual-weight"), help: "Weight of the perceptual term (0: pixel loss only; new runs only).")
    var perceptualWeight: Float?
    @Option(name: .customLong("detail-weight"), help: "Weight of the detail term: the pixel loss over each render's accessory and eyes, at 1 as much as the rest of the image (0: off; new runs only).")
    var detailWeight: Float?

    func run() throws {
        let out = runOptions.out, checkpointEvery = runOptions.checkpointEvery
        try runOptions.validateCheckpointEvery()
        let judgePath = try judge ?? TrainDecoder.defaultJudge()
        let judgeModel = try ModelLocator.loadJudge(judgePath)
        let tuner: DecoderFineTuner
        do {
            if runOptions.resume {
                tuner = try DecoderFineTuner.resume(directory: out, judge: judgeModel, model: model)
                if let steps { tuner.extend(steps: steps) }
                if let checkpointEvery { tuner.setCheckpointEvery(checkpointEvery) }
            } else {
                guard let model else { throw StudioError.badInput("a new run needs --model (the diffusers folder whose decoder to tune)") }
                var cfg = DecoderTuningConfig(model: model)
                if let steps { cfg.steps = steps }
                if let batch { cfg.batch = batch }
                if let perceptualWeight { cfg.perceptualWeight = perceptualWeight }
                if let detailWeight { cfg.detailWeight = detailWeight }
                if let checkpointEvery { cfg.checkpointEvery = checkpointEvery }
                guard cfg.steps >= 0, cfg.batch >= 1, cfg.checkpointEvery >= 1, cfg.perceptualWeight >= 0, cfg.detailWeight >= 0 else {
                    throw StudioError.badInput("--steps, --perceptual-weight and --detail-weight must be ≥ 0, --batch and --checkpoint-every ≥ 1")
                }
                try TrainingConsole.claimNewRun(out)
                tuner = try DecoderFineTuner(directory: out, config: cfg, judge: judgeModel)
            }
        } catch { throw StudioError.wrap(error) }

        FileHandle.standardError.write(Data(String(format: "train-decoder: %.2fM decoder parameters of %@; step %d of %d\n",
                                                   Double(tuner.decoderParameterCount) / 1e6, tuner.state.config.model,
                                                   tuner.state.step, tuner.state.config.steps).utf8))
        let console = try runOptions.train(tuner, command: "train-decoder")
        let s = tuner.state
        try runOptions.report(command: "train-decoder", console: console, finished: s.step >= s.config.steps,
                              result: "model with the tuned decoder in \(out)/model", position: "step \(s.step)",
                              fields: ["step": s.step, "steps": s.config.steps, "model": s.config.model, "total_seconds": s.seconds])
    }

    static func defaultJudge() throws -> String {
        if let p = ModelLocator.locate(ModelLocator.trainingJudgeFile) { return p }
        throw StudioError.badInput("the training judge (models/judges/attributes-train.safetensors) was not found; pass --judge FILE")
    }
}
