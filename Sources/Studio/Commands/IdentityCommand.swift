// `troupe identity`: the identity embedding (design §4). `train-encoder` trains the
// IdentityEncoder on the World and reports top-1 identity retrieval on held-out characters,
// on renders and on their round trips through a model's VAE (what generated images look
// like to it). The identity adapter (`identity train`) comes next.

import ArgumentParser
import Foundation
import Pipeline

struct IdentityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "identity", abstract: "The identity embedding: encoder and adapter.",
                                                    subcommands: [TrainEncoder.self])

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
}
