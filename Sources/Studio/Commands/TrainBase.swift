// `troupe train-base`: trains the embedded default model (VAE, then text encoder + UNet) on
// the World. Runs for hours, so in pieces: it checkpoints every N steps and on Ctrl-C, and
// `--resume` continues exactly where the last checkpoint left off. Progress goes to stderr;
// every step is appended to DIR/metrics.jsonl; the current model is exported to DIR/model/
// (a diffusers folder) at each checkpoint of the UNet phase.

import ArgumentParser
import Foundation
import Pipeline

struct TrainBase: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train-base", abstract: "Train the default model (troupe-mini) on the World.")

    @OptionGroup var runOptions: TrainingRunOptions
    @Option(help: "UNet-phase steps in total (a resumed run may raise it).")
    var steps: Int?
    @Option(name: .customLong("vae-steps"), help: "VAE-phase steps (a resumed run still in that phase may raise it).")
    var vaeSteps: Int?
    @Option(help: "UNet-phase batch size (new runs only).")
    var batch: Int?
    @Option(help: "Architecture: mini (troupe-mini), mini-latent8 (troupe-mini with 8 latent channels) or micro (a tiny model, for tests).")
    var architecture = "mini"
    @Option(name: .customLong("continue-from"), help: "Start a new run from an exported model folder (e.g. models/troupe-mini) at the UNet phase.")
    var continueFrom: String?
    @Option(name: .customLong("at-step"), help: "With --continue-from: the UNet step the folder was exported at (its model card says).")
    var atStep = 0
    @Option(name: .customLong("learning-rate"), help: "Peak UNet-phase learning rate of a new run or a --continue-from branch (default: troupe-mini's recipe); a lower one moves a trained model less.")
    var learningRate: Float?
    @Option(name: .customLong("judge-loss"), help: "Weight of the x̂₀ attribute loss from the training judge (0: off; new or resumed runs).")
    var judgeLoss: Float?
    @Option(name: .customLong("decay-steps"), help: "Cool the UNet learning rate to 0 over the last N steps of --steps (1 − sqrt cooldown); 0 keeps it constant. With --resume: branch a copy of the run folder, then cool it down.")
    var decaySteps: Int?
    @Option(name: .customLong("face-loss"), help: "λ: weigh the ε loss on the latent cells over the characters' faces by 1 + λ (0: plain ε-MSE); the expression lives there.")
    var faceLoss: Float?
    @Option(name: .customLong("detail-loss"), help: "λ: weigh the ε loss on the latent cells over the small identity details a caption names (its accessory, its eye colour) by 1 + λ (0: off).")
    var detailLoss: Float?
    @Option(name: .customLong("vae-face-loss"), help: "λ: a new run's VAE phase weighs reconstruction errors on the characters' faces by 1 + λ (0: plain MSE).")
    var vaeFaceLoss: Float?
    @Option(name: .customLong("expression-contrast"), help: "Weight of the expression-contrast loss: the UNet's ε error over the face, under each expression word, as a classifier of the true one (0: off).")
    var expressionContrast: Float?
    @Option(name: .customLong("color-contrast"), help: "Weight of the colour-contrast loss: for captions naming a skin, hair, eye or outfit colour, the UNet's ε error where that colour shows, under the same caption with other colours, as a classifier of the true one (0: off).")
    var colorContrast: Float?
    @Option(name: .customLong("caption-probe"), help: "Weight of the caption probe: the text encoder's end/padding tokens must name the attributes a caption names, identity and scene (0: off).")
    var captionProbe: Float?
    @Option(name: .customLong("probe-context"), help: "on: the caption probe also names each caption's class and scene words (default); off: only the identity words it spells out.")
    var probeContext: OnOff?
    @Option(name: .customLong("probe-fit-steps"), help: "With --caption-probe: for the next N steps the probe's head fits on the text encoder's output without training the encoder (a fresh probe's large first losses stay out of a trained model).")
    var probeFitSteps: Int?
    @Option(help: "Training judge for --judge-loss (default: models/judges/attributes-train.safetensors).")
    var judge: String?
    @Option(name: .customLong("decoder-from"), help: "With --resume: take the VAE decoder of this model (from `troupe train-decoder`; same encoder required).")
    var decoderFrom: String?

    /// The options a new run sets and a resumed run may change.
    func applyUNetPhaseOptions(_ c: inout BaseTrainingConfig) {
        if let every = runOptions.checkpointEvery { c.checkpointEvery = every }
        if let decaySteps { c.unetDecaySteps = decaySteps }
        if let faceLoss { c.faceLossWeight = faceLoss }
        if let detailLoss { c.detailLossWeight = detailLoss }
        if let expressionContrast { c.expressionContrastWeight = expressionContrast }
        if let colorContrast { c.colorContrastWeight = colorContrast }
        if let captionProbe { c.captionProbeWeight = captionProbe }
        if let probeContext { c.captionProbeNamesContext = probeContext.isOn }
    }

    /// The cooldown must fit in the UNet phase (new runs: checked before the folder is claimed,
    /// so a refused run leaves nothing behind; resumed runs: after their settings are merged).
    static func checkDecay(_ c: BaseTrainingConfig) throws {
        guard c.unetDecaySteps >= 0, c.unetDecaySteps <= c.unetSteps else {
            throw StudioError.badInput("--decay-steps must be between 0 and the UNet steps (\(c.unetSteps))")
        }
    }

    func run() throws {
        let out = runOptions.out, resume = runOptions.resume
        try runOptions.validateCheckpointEvery()
        let tokenizer = try ModelLocator.clipTokenizer(for: "train-base")
        let trainer: BaseModelTrainer
        do {
            if let faceLoss, faceLoss < 0 { throw StudioError.badInput("--face-loss must be ≥ 0") }
            if let detailLoss, !(detailLoss >= 0) { throw StudioError.badInput("--detail-loss must be ≥ 0") }
            if let vaeFaceLoss, vaeFaceLoss < 0 || resume { throw StudioError.badInput("--vae-face-loss applies to a new run and must be ≥ 0") }
            if let expressionContrast, expressionContrast < 0 { throw StudioError.badInput("--expression-contrast must be ≥ 0") }
            if let colorContrast, !(colorContrast >= 0) { throw StudioError.badInput("--color-contrast must be ≥ 0") }
            if let captionProbe, !(captionProbe >= 0) { throw StudioError.badInput("--caption-probe must be ≥ 0") }
            if let decaySteps, decaySteps < 0 { throw StudioError.badInput("--decay-steps must be ≥ 0") }
            if let judgeLoss, judgeLoss < 0 { throw StudioError.badInput("--judge-loss must be ≥ 0") }
            if let probeFitSteps, probeFitSteps < 0 { throw StudioError.badInput("--probe-fit-steps must be ≥ 0") }
            if let learningRate, !(learningRate > 0) || resume { throw StudioError.badInput("--learning-rate applies to a new run and must be > 0") }
            if resume {
                trainer = try BaseModelTrainer.resume(directory: out, tokenizerDirectory: tokenizer)
                if let steps { trainer.extend(unetSteps: steps) }
                if let vaeSteps, !trainer.extend(vaeSteps: vaeSteps) {
                    throw StudioError.badInput("--vae-steps can change only while the run is in its VAE phase, to more than the steps done")
                }
                trainer.reconfigureUNetPhase(applyUNetPhaseOptions)
                try Self.checkDecay(trainer.state.config)
                if let decoderFrom { try trainer.replaceDecoder(from: decoderFrom) }
            } else {
                if decoderFrom != nil { throw StudioError.badInput("--decoder-from applies to a resumed run (--resume)") }
                var cfg = BaseTrainingConfig()
                cfg.architecture = architecture
                if let steps { cfg.unetSteps = steps }
                if let vaeSteps { cfg.vaeSteps = vaeSteps }
                if let batch { cfg.unetBatch = batch }
                if let vaeFaceLoss { cfg.vaeFaceWeight = vaeFaceLoss }
                if let learningRate { cfg.unetLearningRate = learningRate }
                applyUNetPhaseOptions(&cfg)
                guard cfg.unetSteps >= 0, cfg.vaeSteps >= 0, cfg.unetBatch >= 1, cfg.checkpointEvery >= 1 else {
                    throw StudioError.badInput("steps must be ≥ 0, batch and --checkpoint-every ≥ 1")
                }
                try Self.checkDecay(cfg)
                try TrainingConsole.claimNewRun(out)
                if let continueFrom {
                    trainer = try BaseModelTrainer.continuing(from: continueFrom, directory: out, config: cfg, step: atStep, tokenizerDirectory: tokenizer)
                } else {
                    trainer = try BaseModelTrainer(directory: out, config: cfg, tokenizerDirectory: tokenizer)
                }
            }
            if let probeFitSteps {
                let from = trainer.state.phase == .unet ? trainer.state.step : 0
                trainer.reconfigureUNetPhase { $0.captionProbeFitUntil = from + probeFitSteps }
            }
            let weight = judgeLoss ?? trainer.state.config.judgeLossWeight
            if weight > 0 {
                trainer.setJudgeLoss(weight: weight, judge: try ModelLocator.loadJudge(judge ?? TrainDecoder.defaultJudge()))
            } else { trainer.setJudgeLoss(weight: 0, judge: nil) }
        } catch { throw StudioError.wrap(error) }

        let counts = trainer.parameterCounts
        FileHandle.standardError.write(Data(String(format: "train-base %@: VAE %.2fM, text encoder %.2fM, UNet %.2fM parameters; %@ at step %d\n",
                                                   trainer.architecture.name, Double(counts["vae"]!) / 1e6, Double(counts["text_encoder"]!) / 1e6,
                                                   Double(counts["unet"]!) / 1e6, trainer.state.phase.rawValue, trainer.state.step).utf8))
        let console = try runOptions.train(trainer, command: "train-base")
        let s = trainer.state
        try runOptions.report(command: "train-base", console: console, finished: s.phase == .done, result: "model in \(out)/model",
                              position: "\(s.phase.rawValue) step \(s.step)",
                              fields: ["phase": s.phase.rawValue, "step": s.step, "total_seconds": s.seconds,
                                       "scaling_factor": s.scalingFactor, "parameters": counts])
    }
}
