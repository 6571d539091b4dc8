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

    @Option(help: "Run folder: checkpoints/, metrics.jsonl, model/ (the source model with the tuned VAE).")
    var out: String
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
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int?
    @Option(name: .customLong("stop-after"), help: "Stop (with a checkpoint) after this many steps in this piece.")
    var stopAfter: Int?
    @Flag(help: "Continue the run in --out from its latest checkpoint.")
    var resume = false
    @Flag(help: "Print one JSON object on stdout at the end.")
    var json = false

    func run() throws {
        let judgePath = try judge ?? TrainDecoder.defaultJudge()
        let judgeModel = try ModelLocator.loadJudge(judgePath)
        let tuner: DecoderFineTuner
        do {
            if resume {
                tuner = try DecoderFineTuner.resume(directory: out, judge: judgeModel, model: model)
                if let steps { tuner.extend(steps: steps) }
                if let checkpointEvery { tuner.setCheckpointEvery(checkpointEvery) }
            } else {
                guard let model else { throw StudioError.badInput("a new run needs --model (the diffusers folder whose decoder to tune)") }
                var cfg = DecoderTuningConfig(model: model)
                if let steps { cfg.steps = steps }
                if let batch { cfg.batch = batch }
                if let perceptualWeight { cfg.perceptualWeight = perceptualWeight }
                if let checkpointEvery { cfg.checkpointEvery = checkpointEvery }
                guard cfg.steps >= 0, cfg.batch >= 1, cfg.checkpointEvery >= 1, cfg.perceptualWeight >= 0 else {
                    throw StudioError.badInput("--steps and --perceptual-weight must be ≥ 0, --batch and --checkpoint-every ≥ 1")
                }
                try TrainingConsole.claimNewRun(out)
                tuner = try DecoderFineTuner(directory: out, config: cfg, judge: judgeModel)
            }
        } catch { throw StudioError.wrap(error) }

        FileHandle.standardError.write(Data(String(format: "train-decoder: %.2fM decoder parameters of %@; step %d of %d\n",
                                                   Double(tuner.decoderParameterCount) / 1e6, tuner.state.config.model,
                                                   tuner.state.step, tuner.state.config.steps).utf8))
        let console = try TrainingConsole(command: "train-decoder", metricsPath: out + "/metrics.jsonl", phase: tuner.phase,
                                          firstStep: tuner.state.step, stopAfter: stopAfter)
        try console.train(tuner)
        let s = tuner.state
        let message = s.step >= s.config.steps ? "finished; model with the tuned decoder in \(out)/model"
            : "stopped at step \(s.step) with a checkpoint; continue with: troupe train-decoder --out \(out) --resume"
        FileHandle.standardError.write(Data("train-decoder: \(message)\n".utf8))
        if json {
            var obj: [String: Any] = ["out": out, "step": s.step, "steps": s.config.steps, "steps_this_run": console.done, "model": s.config.model,
                                      "seconds": console.seconds, "total_seconds": s.seconds]
            for (k, v) in console.last { obj["last_" + k] = v }
            try printJSON(obj)
        }
        if console.interrupted { throw StudioError.cancelled("train-decoder interrupted; checkpoint written, resume with --resume") }
    }

    static func defaultJudge() throws -> String {
        if let p = ModelLocator.locate("judges/attributes-train.safetensors") { return p }
        throw StudioError.badInput("the training judge (models/judges/attributes-train.safetensors) was not found; pass --judge FILE")
    }
}
