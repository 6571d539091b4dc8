// `troupe train-judge`: trains a World attribute classifier (a judge) and reports held-out
// accuracy per attribute. Two independent instances serve the project: one for training
// losses (stage 3), one for evaluation only (different seeds and World streams).

import ArgumentParser
import Foundation
import Pipeline

struct TrainJudge: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-judge", abstract: "Train a World attribute classifier.")

    @Option(help: "Output safetensors file.")
    var out: String
    @Option(name: .customLong("world-seed"), help: "World seed of the training stream.")
    var worldSeed: UInt64 = 1001
    @Option(help: "Initialisation seed.")
    var seed: UInt64 = 1
    @Option(help: "Training steps (batch 64).")
    var steps = 1500
    @Option(name: .customLong("init"), help: "Start from this judge's weights (fine-tune after a World change) instead of --seed.")
    var initFrom: String?
    @Option(name: .customLong("learning-rate"), help: "Peak AdamW learning rate (warm-up + cosine).")
    var learningRate: Float = 2e-3
    @Option(name: .customLong("eval-seed"), help: "World seed of the held-out evaluation set.")
    var evalSeed: UInt64 = 9009
    @Option(name: .customLong("eval-count"), help: "Held-out samples.")
    var evalCount = 2000
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func run() throws {
        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "train-judge", quiet: false)
        let start = Date()
        var last: Float = 0
        var training = JudgeTraining(worldSeed: worldSeed, initSeed: seed, steps: steps)
        training.learningRate = learningRate
        if let initFrom {
            guard FileManager.default.fileExists(atPath: initFrom) else { throw ValidationError("--init: no judge at \(initFrom)") }
            training.initWeights = initFrom
        }
        let model: AttributeClassifier
        do { model = try training.run { step, loss in
            last = loss
            if step % 10 == 0 || step == steps { progress.update(step: step, total: steps, extra: String(format: "loss %.3f", loss)) }
            return !interrupt.isSet
        } } catch { throw StudioError.wrap(error) }
        progress.finish()
        let acc = JudgeTraining.evaluate(model, evalSeed: evalSeed, count: evalCount)
        let seconds = Date().timeIntervalSince(start)
        let accText = WorldAttribute.allCases.map { "\($0.rawValue)=\(String(format: "%.4f", acc[$0]!))" }.joined(separator: ",")
        do {
            try model.save(to: out, metadata: ["world_seed": String(worldSeed), "init_seed": String(seed), "steps": String(steps),
                                               "init": initFrom ?? "", "learning_rate": String(learningRate),
                                               "final_loss": String(last), "eval_seed": String(evalSeed), "accuracy": accText,
                                               "seconds": String(format: "%.0f", seconds)])
        } catch { throw StudioError.wrap(error) }
        if json {
            var obj: [String: Any] = ["out": out, "seconds": seconds, "final_loss": last]
            for a in WorldAttribute.allCases { obj["accuracy_" + a.rawValue] = acc[a]! }
            try printJSON(obj)
        } else {
            for a in WorldAttribute.allCases { print(String(format: "%-15@ %.4f", a.rawValue as NSString, acc[a]!)) }
            print(String(format: "final loss %.4f, %.0f s, saved %@", last, seconds, out))
        }
    }
}
