// `troupe eval`: character consistency and prompt fidelity of generation methods, measured by
// the evaluation judge (models/judges/attributes-eval.safetensors, never used in training).
// Without --characters/--prompts it runs the built-in protocol (EvalProtocol: fixed
// characters, prompts and seed) so numbers compare from run to run.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Measure identity consistency and prompt fidelity with the World judge.")

    @Option(help: "Diffusers model folder (default: the embedded troupe-mini).")
    var model: String?
    @Option(help: "Judge weights (default: models/judges/attributes-eval.safetensors).")
    var judge: String?
    @Option(help: "JSON lines {\"name\": …, \"prompt\": …}, one character each (default: the built-in six).")
    var characters: String?
    @Option(help: "Prompt templates, one per line, `{}` where the character goes (default: the built-in six).")
    var prompts: String?
    @Option(help: "Comma-separated methods to compare: prompt (the character's prompt as written); prompt-engineering (its prompt with all seven identity attributes spelled out); oneactor (tuned on the character's own generation: 10 auxiliaries, the model's recommended OneActor settings); stage1, stage2 and stages (the stage-1 LoRA, stages 1+2, or 1+2+3, trained on four accepted references: World renders of the character in other scenes through the VAE); identity (the identity adapter, zero-shot, with the character's target — its prompt at OneActor's target seed — as the reference); oneactor+identity (both, on that target); stages+identity (stages 1–3 trained with the identity adapter reading another accepted reference for each row, sampled with it reading the first); stages+oneactor (stages 1–3 and OneActor, tuned on the base model with the first accepted reference as its target, sampled together at the stage guidance, as `generate --character` samples a character with both); reference (World renders of one fixed identity per character through the VAE: the judge's ceiling); reconstruction (the judge on World renders and their VAE round trips: the decoder's ceiling on fidelity).")
    var methods = "prompt"
    @Option(help: "Images per character and prompt.")
    var seeds = 4
    @Option(help: "Sampling steps (default: the model's troupe.json, else 25).")
    var steps: Int?
    @Option(help: "Classifier-free guidance scale, or comma-separated scales: each method is tuned once and sampled at each, one result row per scale (default: the model's troupe.json — for the stage methods its lora_guidance_scale —, else 7.5).")
    var cfg: String?
    @Option(name: .customLong("v"), help: "\(Self.oneActorMethods): interpolation weight of the character's offset, or comma-separated weights: tuned once, one result row each (0: no offset; default \(OneActorAdapter.defaultV)).")
    var v: String?
    @Option(help: "\(Self.oneActorMethods): cluster guidance's auxiliary exclusion η2.")
    var eta2: Float = 0
    @Option(name: .customLong("guidance-steps"), help: "\(Self.oneActorMethods): the steps A:B (from 1) with the character's offset and cluster guidance; outside them the plain prompt (default: generate's).")
    var guidanceSteps: String?
    @Option(name: .customLong("oneactor-steps"), help: "\(Self.oneActorMethods): tuning steps per character (default: the model's troupe.json, else 200).")
    var oneActorSteps: Int?
    @Option(name: .customLong("oneactor-learning-rate"), help: "\(Self.oneActorMethods): the projector's AdamW learning rate (default: the model's troupe.json, else 1e-4).")
    var oneActorLearningRate: Float?
    @Option(name: .customLong("oneactor-pose-weight"), help: "\(Self.oneActorMethods): weight of the pose/expression term (the training judge on rows that ask for a random pose and expression; 0: off; default: the model's troupe.json, else 0).")
    var oneActorPoseWeight: Float?
    @Option(name: .customLong("oneactor-identity-weight"), help: "\(Self.oneActorMethods): weight of the identity term (IdentityEncoder on the target row's decoded x̂₀; 0: the paper's loss; default: the model's troupe.json, else 0).")
    var oneActorIdentityWeight: Float?
    @Option(name: .customLong("stage-steps"), help: "\(Self.stageMethods): stage-1 steps (stage 2 takes half; default: the model's troupe.json, else 200).")
    var stageSteps: Int?
    @Option(name: .customLong("stage-batch"), help: "\(Self.stageMethods): rows per tuning step, every stage (default \(AppearanceTuningConfig().batch); 1…64) — twice the rows costs what a soup of two tunings does.")
    var stageBatch: Int?
    @Option(name: .customLong("stage-text-encoder-rank"), help: "\(Self.stageMethods): also train LoRA adapters of this rank on the text encoder (0, the default: it stays frozen).")
    var stageTextEncoderRank: Int?
    @Option(name: .customLong("stage-conv-rank"), help: "\(Self.stageMethods): rank of the LoCon adapters on the UNet's ResNet convolutions (0: attention layers only; default \(AppearanceTuningConfig().convRank), as tune).")
    var stageConvRank: Int?
    @Option(name: .customLong("stage-snr-gamma"), help: "\(Self.stageMethods): Min-SNR-γ weighting of the stages' diffusion loss (0: off; default \(AppearanceTuningConfig().snrGamma), as tune).")
    var stageSNRGamma: Float?
    @Option(name: .customLong("stage-ff-rank"), help: "\(Self.stageMethods): also train LoRA adapters of this rank on the UNet's feed-forward layers (0: off; default \(AppearanceTuningConfig().feedForwardRank), as tune --ff-rank).")
    var stageFeedForwardRank: Int?
    @Option(name: .customLong("stage-summary-offset"), help: "\(Self.stageMethods): pivotal tuning — also learn one text offset at the base word and the prompt's summary tokens with the LoRA, at this multiple of its learning rate, and sample with it (0: off; default: the model's troupe.json lora_summary_offset, as tune --summary-offset).")
    var stageSummaryOffset: Float?
    @Flag(name: .customLong("stage-pose-view"), help: "\(Self.stageMethods): stage 3's pose/expression rows also name a random view, with the training judge's view term (as tune --pose-view).")
    var stagePoseView = false
    @Option(name: .customLong("stage-seeds"), help: "\(Self.stageMethods): tune each character K times (tuning seeds the protocol's + 0, 7919, 2·7919, …) and report each tuning alone and their soup (the mean of their weight deltas) and norm-matched soup (rescaled per layer to the tunings' mean norm; JSON soup_norm_ratio: the plain soup's median layer norm over its tunings') as rows, with each tuning's training-side validation score per character (JSON tuning_validation; \(SamplingDefaults.soupSizesText)). Default: what tune stages does — the model's troupe.json lora_soup K (else 1) tunings, reported as one row, their norm-matched soup.")
    var stageSeeds: Int?
    @Option(name: .customLong("oneactor-seeds"), help: "\(Self.oneActorMethods) without stages: tune each character's projector K times on one cluster (tuning seeds the protocol's + 0, 7919, …) and report each tuning alone and the soups of their offsets (plain and norm-matched) as rows (default 1; \(SamplingDefaults.soupSizesText)).")
    var oneActorSeeds = 1
    @Option(name: .customLong("stage-learning-rate"), help: "\(Self.stageMethods): stage 1's AdamW learning rate (stage 2 takes half; default: the model's troupe.json, else 1e-4).")
    var stageLearningRate: Float?
    @Option(name: .customLong("oneactor-draws"), help: "\(Self.oneActorMethods): noise draws per batch row while tuning (the paper: 1).")
    var oneActorDraws = OneActorConfig().drawsPerRow
    @Option(name: .customLong("offset-site"), help: "\(Self.oneActorMethods): output, input or summary (see `tune oneactor --offset-site`; default: the model's troupe.json, else output).")
    var offsetSite: String?
    @Option(name: .customLong("identity-scale"), help: "identity, oneactor+identity, stages+identity: the identity adapter's scale (stages+identity: while training too).")
    var identityScale: Float = IdentityAdapter.defaultScale
    @Option(name: .customLong("identity-adapter"), help: "identity, oneactor+identity, stages+identity: adapter file (default: models/identity/adapter.safetensors).")
    var identityAdapter: String?
    @Option(name: .customLong("stage-identity-scale"), help: "stages+identity: the identity adapter's scale while the stages train (default: --identity-scale; 0 trains the plain stages and adds the embedding only when sampling).")
    var stageIdentityScale: Float?
    @Option(name: .customLong("stage-lora-scale"), help: "\(Self.stageMethods): the tuned LoRA's multiplier when sampling (what the studio's stage-LoRA slider sets), or comma-separated multipliers: tuned once, one result row each (default: the model's troupe.json lora_scale, else 1).")
    var stageLoRAScale: String?
    @Option(name: .customLong("reference-attention"), help: "\(Self.tunedMethods): reference-only attention to the first accepted reference (OneActor alone: its target) when sampling (every self-attention layer also attends to the reference's tokens; 1: diffusers' reference_attn, 0: off), or comma-separated scales: tuned once, one result row each (default: off).")
    var referenceAttention: String?
    @Option(name: .customLong("mask-scene-words"), help: "Methods that sample a prompt: off, on, or off,on (sampled both ways, one result row each): every cross-attention layer skips the prompt's words outside the character's prompt, which the end and padding tokens still carry (default: off; on troupe-mini it did not help the stages, docs/stages.md).")
    var maskSceneWords: String?
    @Option(name: .customLong("subject-mask"), help: "\(Self.oneActorMethods): off, on, or off,on (sampled both ways from one tuning, one result row each): cluster guidance only where the character is (the box of DiffEdit's mask from the prompt with and without the character's prompt, every step), the plain prompt's guidance elsewhere (default: the model's troupe.json, else off; docs/oneactor.md).")
    var subjectMask: String?
    @Option(name: .customLong("reference-draw"), help: "tuned and identity methods: which draw of each character's references — the target OneActor and the identity adapter start from, the stages' four accepted references (0: the protocol's own; others measure how much a result depends on the images an artist happened to pick).")
    var referenceDraw: UInt64 = 0
    @Option(name: .customLong("tuning-draw"), help: "oneactor and the stage methods: added to each character's tuning seed (0: the protocol's own; others measure how much a result depends on the tuning's own random draws — timesteps, noise, batches — with the same references).")
    var tuningDraw: UInt64 = 0
    @Option(help: "Write a grid of every image (rows: character × prompt) to this PNG.")
    var grid: String?
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func run() throws {
        let chosen = try methods.split(separator: ",").map { name -> EvalMethod in
            let m = name.trimmingCharacters(in: .whitespaces)
            guard let method = EvalMethod(rawValue: m) else {
                throw StudioError.badInput("unknown method '\(m)' (available: \(EvalMethod.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return method
        }
        guard (1...64).contains(seeds) else { throw StudioError.badInput("--seeds must be in 1…64") }
        let cfgs = try cfg.map { try NumberList.parse($0, flag: "--cfg") }
        let loraScales = try stageLoRAScale.map { try NumberList.parse($0, flag: "--stage-lora-scale") }
        let vs = try v.map { try NumberList.parse($0, flag: "--v") } ?? [OneActorAdapter.defaultV]
        let referenceScales = try referenceAttention.map { try NumberList.parse($0, flag: "--reference-attention") }
        if let r = referenceScales, !r.allSatisfy({ (0...1).contains($0) }) { throw StudioError.badInput("--reference-attention scales must be in 0…1") }
        let sceneMasks = try maskSceneWords.map { try Eval.onOff($0, flag: "--mask-scene-words") } ?? [false]
        let subjectMasks = try subjectMask.map { try Eval.onOff($0, flag: "--subject-mask") }
        // A tuning's soup members: the sizes `tune stages --soup` takes.
        for (flag, k) in [("--stage-seeds", stageSeeds ?? 1), ("--oneactor-seeds", oneActorSeeds)] where !SamplingDefaults.soupSizes.contains(k) {
            throw StudioError.badInput("\(flag) must be in \(SamplingDefaults.soupSizesText)")
        }
        if let b = stageBatch, !(1...64).contains(b) { throw StudioError.badInput("--stage-batch must be in 1…64") }
        if let s = stageIdentityScale, !(s.isFinite && abs(s) <= 100) {
            throw StudioError.badInput("--stage-identity-scale must be a finite number (at most 100 in size), got \(s)")
        }
        // OneActor's step range, checked before any model loads or tunes.
        let controls = CharacterControls(guidanceSteps: try guidanceSteps.map(CharacterControls.steps(flag:)))
        let chars = try loadCharacters()
        let templates: [EvalPrompt]
        do { templates = try loadPrompts().map { try EvalPrompt(template: $0) } } catch { throw StudioError.badInput("\(error)") }
        let judgePath = try judge ?? Eval.defaultJudge()
        let evaluator = ConsistencyEvaluator(judge: try ModelLocator.loadJudge(judgePath))
        let (pipe, modelName) = try ModelLocator.loadPipeline(model)
        // A stage method's tunings: as many as the flag asks (every one reported), else as many as
        // `tune stages` makes for this model (its product, the norm-matched soup, reported alone).
        let stageTunings = stageSeeds ?? pipe.defaults.stageSoup
        let interrupt = InterruptFlag.install()
        let start = Date()
        var results: [EvalVariant: MethodScores] = [:]
        /// With --stage-seeds: each stage method's tunings' validation scores, by character.
        var validation: [EvalMethod: [Int: [Double]]] = [:]
        /// With --stage-seeds: each stage method's plain soup's median layer norm over its tunings' mean, by character.
        var soupNormRatios: [EvalMethod: [Int: Float]] = [:]
        /// Per stage method and character: the summary offset's norm and the prompt's summary tokens' mean norm.
        var summaryOffsetNorms: [EvalMethod: [Int: (offset: Float, tokens: Float)]] = [:]
        var gridRows: [[RGBImage?]] = [], rowLabels: [String] = []
        let generating = chosen.filter { $0 != .reconstruction }
        // Each method's sampling settings, in report order (a method tunes once for all of them).
        let variants = Dictionary(uniqueKeysWithValues: generating.map { m in
            (m, EvalVariant.all(for: m, cfgs: cfgs, loraScales: loraScales ?? [pipe.defaults.stageLoRAScale], vs: vs, referenceScales: referenceScales,
                                sceneMasks: sceneMasks, subjectMasks: subjectMasks ?? [pipe.defaults.oneActorSubjectMask], stageSeeds: stageTunings, everyStageTuning: stageSeeds != nil, oneActorSeeds: oneActorSeeds,
                                defaults: pipe.defaults))
        })
        let reported = generating.flatMap { variants[$0]! }
        let ceiling = chosen.contains(.reconstruction) ? ReconstructionCeiling(vae: pipe.vae, judge: evaluator.judge).measure() : nil
        let total = chars.count * templates.count * reported.count
        let progress = ProgressLine(label: "eval", quiet: false)
        var done = 0
        var identityReference: IdentityReference?    // loaded once, when a method first needs it
        // The tuners' frozen models, likewise loaded once for every character and method
        // (an inner nil: looked for and not shipped).
        var loadedEncoder: IdentityEncoder??, loadedTrainingJudge: AttributeClassifier??
        func identityEncoder() throws -> IdentityEncoder? { try Self.once(&loadedEncoder, ModelLocator.identityEncoder) }
        func trainingJudge() throws -> AttributeClassifier? { try Self.once(&loadedTrainingJudge, ModelLocator.trainingJudge) }
        func loadIdentityReference() throws -> IdentityReference {
            let ref = try identityReference ?? IdentityReference.load(pipeline: pipe, adapter: identityAdapter)
            identityReference = ref
            return ref
        }
        // The seed of character `ci`'s references in this draw: `slot` 999 the target OneActor and
        // the identity adapter start from (its prompt at that seed), 777 the stages' accepted
        // references. Draw 0 is the protocol's own.
        func referenceSeed(_ ci: Int, slot: Int) -> UInt64 {
            EvalProtocol.seed &+ UInt64(ci * 1000 + slot) &+ referenceDraw &* 0x9E37_79B9_7F4A_7C15
        }
        // The seed of character `ci`'s stage tuning (slot 778) in this tuning draw (OneActor's is
        // its target seed plus the draw, added where it tunes). Draw 0 is the protocol's own.
        func stageTuningSeed(_ ci: Int) -> UInt64 { EvalProtocol.seed &+ UInt64(ci * 1000 + 778) &+ tuningDraw }
        for method in generating {
            var samples: [EvalVariant: [ConsistencyEvaluator.Sample]] = [:], classSamples: [EvalVariant: [ConsistencyEvaluator.Sample]] = [:]
            for (ci, written) in chars.enumerated() {
                let c = method == .promptEngineering ? written.spelledOut : written
                /// OneActor's adapter for each tuning choice (one: `.only`; several: each and their soups).
                var adapters: [TuningChoice: OneActorAdapter] = [:]
                /// OneActor's target, clean latents (the reference-attention sweep's reference).
                var oneActorTarget: Tensor? = nil
                // The stages' accepted references (stages+oneactor: the first is OneActor's target too).
                let refs = method.tunedStages == nil ? [] : EvalGeneration.acceptedReferences(vae: pipe.vae, character: c, seed: referenceSeed(ci, slot: 777))
                if method.usesOneActor {
                    let dir = NSTemporaryDirectory() + "troupe-eval-oneactor-\(getpid())-\(ci)"
                    defer { try? FileManager.default.removeItem(atPath: dir) }
                    var config = OneActorConfig.recommended(by: pipe.defaults)
                    config.drawsPerRow = max(1, min(oneActorDraws, 16))
                    if let n = oneActorSteps { config.steps = n }
                    if let lr = oneActorLearningRate { config.learningRate = lr }
                    if let s = offsetSite {
                        guard let site = OffsetSite(rawValue: s) else { throw StudioError.badInput("--offset-site must be \(OffsetSite.choices)") }
                        config.offsetSite = site
                    }
                    if let w = oneActorIdentityWeight { config.identityWeight = w }
                    if let w = oneActorPoseWeight { config.poseWeight = w }
                    let judge = config.poseWeight > 0 ? try trainingJudge() : nil
                    let encoder = config.identityWeight > 0 ? try identityEncoder() : nil
                    let k = method.tunedStages == nil ? oneActorSeeds : 1
                    do {
                        let tuned = try EvalGeneration.oneActor(pipeline: pipe, character: c, seed: referenceSeed(ci, slot: 999),
                                                                targetImage: method == .stagesOneactor ? refs[0] : nil, tuningDraw: tuningDraw,
                                                                config: config, identityEncoder: encoder, judge: judge, tunings: k, directory: dir)
                        oneActorTarget = tuned.targetLatents
                        if k == 1 { adapters[.only] = tuned.adapters[0] } else {
                            for (i, a) in tuned.adapters.enumerated() { adapters[.seed(i)] = a }
                            adapters[.soup] = OneActorAdapter.soup(of: tuned.adapters, normMatched: false)
                            adapters[.normMatchedSoup] = OneActorAdapter.soup(of: tuned.adapters, normMatched: true)
                        }
                    } catch { throw StudioError.badInput("\(c.name): \(error)") }
                }
                var identity: (IdentityReference, Tensor)? = nil
                /// A stage method's tunings' adapters, a set each (one set without --stage-seeds),
                /// and with several their soups.
                var seedSets: [LoRASet] = [], soups: [TuningChoice: LoRASet] = [:]
                /// Each stage tuning's summary offset (--stage-summary-offset), read by every prompt branch.
                var stageOffsets: [SummaryOffset] = []
                /// The offset each tuning choice samples: one tuning's, or their soup (as the LoRA's).
                var stageOffset: [TuningChoice: SummaryOffset] = [:]
                if method == .identity || method == .oneactorIdentity {
                    let ref = try loadIdentityReference()
                    var tr = pipe.request(prompt: c.prompt)
                    tr.seed = referenceSeed(ci, slot: 999)      // OneActor's target
                    let target: [UInt8]
                    do { target = try pipe.generate(tr).images[0] } catch { throw StudioError.wrap(error) }
                    identity = (ref, try ref.embedding(WorldBatch.tensor(rgb8: [target], size: World.imageSize)))
                }
                if let throughStage = method.tunedStages {
                    let dir = NSTemporaryDirectory() + "troupe-eval-stages-\(getpid())-\(ci)"
                    defer { for k in 0..<stageTunings { try? FileManager.default.removeItem(atPath: dir + "-\(k)") } }
                    let encoder = try identityEncoder()
                    let trainJudge = try trainingJudge()
                    // stages+identity: every reference's tokens for training; the first one is
                    // the character's target when sampling.
                    var tuningIdentity: TuningIdentity? = nil
                    if method.usesIdentityAdapter {
                        let ref = try loadIdentityReference()
                        let features = try refs.map { try ref.embedding($0) }
                        tuningIdentity = try TuningIdentity(adapter: ref.adapter, features: features)
                        identity = (ref, features[0])
                    }
                    do {
                        var stage1 = AppearanceTuningConfig.recommended(by: pipe.defaults)
                        if let n = stageSteps { stage1.steps = n }
                        if let b = stageBatch { stage1.batch = b }
                        if let lr = stageLearningRate { stage1.learningRate = lr }
                        if let k = stageTextEncoderRank { stage1.textEncoderRank = k }
                        if let k = stageConvRank { stage1.convRank = k }
                        if let g = stageSNRGamma { stage1.snrGamma = g }
                        if let k = stageFeedForwardRank { stage1.feedForwardRank = k }
                        if let k = stageSummaryOffset { stage1.summaryOffsetLearningRateScale = k }
                        if stagePoseView { stage1.poseRowsNameView = true }
                        for k in 0..<stageTunings {
                            let offset = try EvalGeneration.stages(pipeline: pipe, character: c, references: refs, seed: AppearanceTuningConfig.soupMemberSeed(stageTuningSeed(ci), member: k),
                                                      throughStage: throughStage, stage1: stage1, encoder: encoder,
                                                      judge: trainJudge, identity: tuningIdentity, identityScale: stageIdentityScale ?? identityScale,
                                                      directory: dir + "-\(k)")
                            if let offset { stageOffsets.append(offset) }
                            // Each tuning set aside as a set of its own, so the next trains on the bare model.
                            if stageTunings > 1 {
                                let set = LoRASet.tuned(on: pipe, id: "seed-\(k)")
                                // The training-side score that would pick among the tunings (best of K),
                                // reported with the tunings' own rows.
                                if stageSeeds != nil, let encoder {
                                    set.rescale(pipe.defaults.stageLoRAScale)
                                    var q = pipe.request(prompt: c.prompt)
                                    q.guidanceScale = pipe.defaults.guidanceScale(characterLoRA: true)
                                    let score = try TuningValidation.identityScore(pipeline: pipe, encoder: encoder, references: refs, prompt: c.prompt,
                                                                                   request: q, seed: stageTuningSeed(ci))
                                    validation[method, default: [:]][ci, default: []].append(score)
                                }
                                set.detach(); seedSets.append(set)
                            }
                        }
                        if seedSets.count > 1 {
                            // Every report samples the norm-matched soup; the plain one only where a row asks for it.
                            let (matched, ratios) = LoRASoup.make(of: seedSets, id: "soup-matched", normMatched: true)
                            soups = [.normMatchedSoup: matched]
                            if variants[method]!.contains(where: { $0.tuning == .soup }) {
                                soups[.soup] = LoRASoup.make(of: seedSets, id: "soup", normMatched: false).set
                            }
                            soupNormRatios[method, default: [:]][ci] = ratios.sorted()[ratios.count / 2]
                        }
                        if let o = stageOffsets.first {
                            let p = try SummaryOffset.positions(baseWord: o.baseWord, in: c.prompt, tokenizer: pipe.tokenizer)
                            let ctx = GradMode.noGrad { pipe.textEncoder([pipe.tokenizer.encode(c.prompt)]) }.contiguous()
                            let tokens = ctx.reshaped([ctx.shape[1], ctx.shape[2]]).selectingRows(p).square().sum(axes: [1]).sqrt().mean().item()
                            summaryOffsetNorms[method, default: [:]][ci] = (o.norm, tokens)
                            if stageOffsets.count == 1 { stageOffset[.only] = o } else {
                                for (k, member) in stageOffsets.enumerated() { stageOffset[.seed(k)] = member }
                                let matched = try SummaryOffset.soup(of: stageOffsets, normMatched: true)
                                stageOffset[.only] = matched; stageOffset[.normMatchedSoup] = matched
                                stageOffset[.soup] = try SummaryOffset.soup(of: stageOffsets, normMatched: false)
                            }
                        }
                        for set in seedSets { set.reattach() }
                        // One tuning: the adapters it left, as the one set every variant rescales.
                        if seedSets.isEmpty { seedSets = [LoRASet.tuned(on: pipe)] }
                    } catch { throw StudioError.badInput("\(c.name): \(error)") }
                }
                defer { if method.tunedStages != nil { EvalGeneration.removeAdapters(pipe) } }
                // The reference-attention sweep's reference, encoded once per character: the stages'
                // first accepted reference (stages+oneactor: also OneActor's target), else OneActor's target.
                let referenceLatents = referenceScales == nil ? nil : (refs.first.map { ReferenceAttention.latents(of: $0, vae: pipe.vae) } ?? oneActorTarget)
                /// The method's images of `character` under template `pi`, sampled as `variant` says.
                func generate(_ character: EvalCharacter, _ pi: Int, _ variant: EvalVariant) throws -> [[UInt8]] {
                    let p = templates[pi]
                    var r = pipe.request(prompt: p.text(for: character))
                    r.steps = steps ?? r.steps; r.guidanceScale = variant.guidanceScale; r.count = seeds
                    r.seed = EvalProtocol.seed &+ UInt64(ci * 1000 + pi)
                    if method == .reference {
                        return EvalGeneration.reference(vae: pipe.vae, character: character, prompt: p, count: seeds, seed: r.seed)
                    }
                    var conditioning: Conditioning? = nil, guidance: Guidance? = nil
                    do {
                        if let adapter = method.tunedStages == nil ? adapters[variant.tuning] : adapters[.only], let v = variant.v {
                            conditioning = try adapter.conditioning(for: r, pipeline: pipe, v: v,
                                                                    subjectlessOf: variant.subjectMask ? character.prompt : nil)
                            guidance = ClusterGuidance(eta1: r.guidanceScale, eta2: eta2, steps: controls.guidanceRange(steps: r.steps), outsideScale: r.guidanceScale,
                                                       subjectMask: variant.subjectMask)
                        }
                        // The summary offset of the tuning (or soup) this variant samples.
                        if let o = stageOffset[variant.tuning] {
                            conditioning = try o.apply(to: conditioning ?? pipe.encodePrompts(r), prompt: r.prompt, tokenizer: pipe.tokenizer,
                                                       loraMultiplier: variant.loraScale ?? 1)
                        }
                        if let (ref, e) = identity {
                            conditioning = try ref.attach(to: conditioning ?? pipe.encodePrompts(r), embedding: e, scale: identityScale)
                        }
                        if let s = variant.referenceScale, s > 0 {
                            guard let latents = referenceLatents else {
                                throw StudioError.badInput("--reference-attention: \(method.rawValue) has no reference image")
                            }
                            var cond = try conditioning ?? pipe.encodePrompts(r)
                            cond.referenceAttention = try ReferenceAttention(latents: latents, scale: s, seed: r.seed)
                            conditioning = cond
                        }
                        if variant.sceneMask {
                            guard let positions = SceneWordMask.positions(prompt: r.prompt, characterPrompt: character.prompt, tokenizer: pipe.tokenizer) else {
                                throw StudioError.badInput("--mask-scene-words: '\(r.prompt)' does not contain the character's prompt within 77 tokens")
                            }
                            conditioning = try (conditioning ?? pipe.encodePrompts(r)).maskingSceneWords(positions)
                        }
                        let out = try pipe.generate(r, conditioning: conditioning, guidance: guidance)
                        guard out.width == 64, out.height == 64 else {
                            throw StudioError.badInput("the judge reads 64×64 images; \(modelName) generates \(out.width)×\(out.height)")
                        }
                        return out.images
                    } catch let e as StudioError { throw e } catch { throw StudioError.wrap(error) }
                }
                for variant in variants[method]! {
                    // The stage tuners' LoRA, rescaled from its trained scales: the one tuning, one of
                    // several, or a soup of them — that set at m, the others at 0.
                    if let m = variant.loraScale {
                        for (k, set) in seedSets.enumerated() { set.rescale(variant.tuning == .only || variant.tuning == .seed(k) ? m : 0) }
                        for (t, set) in soups { set.rescale(variant.tuning == t ? m : 0) }
                    }
                    // Class drift: the same prompts with the base word alone, under this method's tuning.
                    if method.measuresClassDrift {
                        let plain: EvalCharacter
                        do { plain = try written.classOnly() } catch { throw StudioError.badInput("\(error)") }
                        for pi in templates.indices {
                            if interrupt.isSet { throw StudioError.cancelled("eval interrupted") }
                            for px in try generate(plain, pi, variant) { classSamples[variant, default: []].append(.init(character: ci, prompt: templates[pi], pixels: px)) }
                        }
                    }
                    for (pi, p) in templates.enumerated() {
                        if interrupt.isSet { throw StudioError.cancelled("eval interrupted") }
                        let images = try generate(c, pi, variant)
                        for px in images { samples[variant, default: []].append(.init(character: ci, prompt: p, pixels: px, namedIdentity: c.namedIdentity)) }
                        if grid != nil {
                            gridRows.append(images.map { RGBImage(width: 64, height: 64, pixels: $0) })
                            rowLabels.append("\(variant.label) \(c.name) \(pi + 1)")
                        }
                        done += 1
                        progress.update(step: done, total: total)
                    }
                }
            }
            for variant in variants[method]! {
                results[variant] = evaluator.score(samples[variant] ?? [])
                if let k = classSamples[variant] { results[variant]!.classConsistency = evaluator.score(k).identityConsistency }
            }
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(start)
        if let grid {
            do { try PNGCodec.write(Grid(cells: gridRows, rowLabels: rowLabels).compose(enlarge: 2), to: grid) } catch { throw StudioError.wrap(error) }
        }
        let n = results.values.reduce(0) { $0 + $1.images }
        if json {
            var obj: [String: Any] = ["model": modelName, "judge": judgePath, "n_images": n, "seconds": seconds, "seeds": seeds, "reference_draw": referenceDraw, "tuning_draw": tuningDraw,
                                      "steps": steps ?? pipe.defaults.steps, "cfg": cfgs.map { $0.count == 1 ? $0[0] as Any : $0 } ?? pipe.defaults.guidanceScale, "characters": chars.map(\.name), "prompts": templates.map(\.template)]
            obj["methods"] = Dictionary(uniqueKeysWithValues: results.map { variant, s -> (String, [String: Any]) in
                let m = variant.method
                var o: [String: Any] = ["identity_consistency": s.identityConsistency, "prompt_fidelity": s.promptFidelity, "n_images": s.images,
                                        "per_attribute": s.perAttribute, "prompts": chars.map { m == .promptEngineering ? $0.spelledOut.prompt : $0.prompt },
                                        "method": m.rawValue, "cfg": variant.guidanceScale]
                if let l = variant.loraScale { o["lora_scale"] = l }
                if let v = variant.v { o["v"] = v }
                if let ref = variant.referenceScale { o["reference_attention"] = ref }
                o["mask_scene_words"] = variant.sceneMask
                if m.usesOneActor { o["subject_mask"] = variant.subjectMask }
                if variant.tuning != .only {
                    o["tuning"] = variant.tuning.name
                    if let r = soupNormRatios[m] { o["soup_norm_ratio"] = r.keys.sorted().map { ["name": chars[$0].name, "ratio": r[$0]!] as [String: Any] } }
                    // TuningValidation.identityScore of each tuning, per character (what best-of-K would pick by).
                    if let v = validation[m] { o["tuning_validation"] = v.keys.sorted().map { ["name": chars[$0].name, "scores": v[$0]!] as [String: Any] } }
                }
                if let r = summaryOffsetNorms[m] {
                    o["summary_offset_norm"] = r.keys.sorted().map { ["name": chars[$0].name, "offset": r[$0]!.offset, "summary_tokens": r[$0]!.tokens] as [String: Any] }
                }
                if let f = s.identityFidelity { o["identity_fidelity"] = f }
                if let u = s.unnamedConsistency { o["unnamed_consistency"] = u }
                if let k = s.classConsistency { o["class_consistency"] = k }
                o["per_prompt"] = templates.compactMap { p -> [String: Any]? in
                    s.perPrompt[p.template].map { ["prompt": p.template, "cross_prompt_consistency": $0.crossPromptConsistency, "within_prompt_consistency": $0.withinPromptConsistency, "prompt_fidelity": $0.promptFidelity] }
                }
                o["per_character"] = s.perCharacter.keys.sorted().map { ci -> [String: Any] in
                    let p = s.perCharacter[ci]!
                    var e: [String: Any] = ["name": chars[ci].name, "identity_consistency": p.identityConsistency, "prompt_fidelity": p.promptFidelity]
                    if let f = p.identityFidelity { e["identity_fidelity"] = f }
                    return e
                }
                return (variant.label, o)
            })
            if let c = ceiling {
                func keyed(_ d: [WorldAttribute: Double]) -> [String: Double] { Dictionary(uniqueKeysWithValues: d.map { ($0.key.rawValue, $0.value) }) }
                obj["reconstruction"] = ["original": keyed(c.original), "reconstructed": keyed(c.reconstructed), "mse": c.mse, "n_images": c.images,
                                         "latent_sensitivity": keyed(c.latentSensitivity), "latent_change": keyed(c.latentChange)]
            }
            try printJSON(obj)
        } else {
            print("model \(modelName), \(chars.count) characters × \(templates.count) prompts × \(seeds) seeds, judge \(judgePath)")
            if stageSeeds == nil, stageTunings > 1, generating.contains(where: { $0.tunedStages != nil }) {
                print("stage methods: tuned \(stageTunings) times (the model's lora_soup), each row their norm-matched soup")
            }
            if let c = ceiling {
                print(String(format: "reconstruction: judge accuracy on %d World renders → their VAE round trips (MSE %.4f)", c.images, c.mse))
                print("  " + WorldAttribute.allCases.map { String(format: "%@ %.2f→%.2f", $0.rawValue, c.original[$0]!, c.reconstructed[$0]!) }.joined(separator: ", "))
                print("latent sensitivity ‖Δz‖²/‖Δx‖² when one context attribute changes: "
                      + c.latentSensitivity.sorted { $0.key.rawValue < $1.key.rawValue }.map { String(format: "%@ %.3f", $0.key.rawValue, $0.value) }.joined(separator: ", "))
                print("mean latent change ‖Δz‖² per changed pair: "
                      + c.latentChange.sorted { $0.key.rawValue < $1.key.rawValue }.map { String(format: "%@ %.1f", $0.key.rawValue, $0.value) }.joined(separator: ", "))
            }
            for variant in reported {
                let s = results[variant]!
                func opt(_ x: Double?) -> String { x.map { String(format: "%.3f", $0) } ?? "  –  " }
                print(String(format: "%-18@ identity consistency %.3f (unnamed %@)   identity fidelity %@   prompt fidelity %.3f   class consistency %@   (%d images)",
                             variant.label as NSString, s.identityConsistency, opt(s.unnamedConsistency) as NSString,
                             opt(s.identityFidelity) as NSString, s.promptFidelity, opt(s.classConsistency) as NSString, s.images))
                print("  " + s.perAttribute.keys.sorted().map { String(format: "%@ %.2f", $0, s.perAttribute[$0]!) }.joined(separator: ", "))
                if !s.perCharacter.isEmpty {
                    print("  per character (identity consistency / prompt fidelity): " + s.perCharacter.keys.sorted().map {
                        String(format: "%@ %.2f/%.2f", chars[$0].name, s.perCharacter[$0]!.identityConsistency, s.perCharacter[$0]!.promptFidelity)
                    }.joined(separator: ", "))
                }
                if !s.perPrompt.isEmpty {
                    print("  per prompt (consistency with the other prompts' images / among its own images / prompt fidelity): " + templates.compactMap { p in
                        s.perPrompt[p.template].map { String(format: "'%@' %.2f/%.2f/%.2f", p.template, $0.crossPromptConsistency, $0.withinPromptConsistency, $0.promptFidelity) }
                    }.joined(separator: ", "))
                }
            }
            print(String(format: "%.1f s", seconds))
        }
    }

    /// The methods a family of flags applies to, for their help (derived, so a new method is listed).
    static let oneActorMethods = EvalMethod.allCases.filter(\.usesOneActor).map(\.rawValue).joined(separator: ", ")
    static let stageMethods = EvalMethod.allCases.filter { $0.tunedStages != nil }.map(\.rawValue).joined(separator: ", ")
    /// The methods tuned per character (a stage LoRA or a OneActor offset), each listed once.
    static let tunedMethods = EvalMethod.allCases.filter { $0.tunedStages != nil || $0.usesOneActor }.map(\.rawValue).joined(separator: ", ")

    /// `slot`'s value, loading it with `load` the first time (a nil result is remembered too).
    static func once<T>(_ slot: inout T??, _ load: () throws -> T?) rethrows -> T? {
        if let loaded = slot { return loaded }
        let value = try load()
        slot = .some(value)
        return value
    }

    /// An off/on sweep flag (`--mask-scene-words`, `--subject-mask`): "off", "on" or both, comma-separated, each once.
    static func onOff(_ text: String, flag: String) throws -> [Bool] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        let values = try parts.map { p -> Bool in
            switch p {
            case "off": return false
            case "on": return true
            default: throw StudioError.badInput("\(flag) takes off, on or off,on; got '\(text)'")
            }
        }
        guard Set(values).count == values.count else { throw StudioError.badInput("\(flag) names '\(text)': each of off and on at most once") }
        return values
    }

    static func defaultJudge() throws -> String {
        if let p = ModelLocator.locate(ModelLocator.evaluationJudgeFile) { return p }
        throw StudioError.badInput("the evaluation judge (models/judges/attributes-eval.safetensors) was not found; pass --judge FILE (train one with `troupe train-judge`)")
    }

    func loadCharacters() throws -> [EvalCharacter] {
        guard let path = characters else { return EvalProtocol.characters }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw StudioError.badInput("\(path): cannot read the characters file") }
        var out: [EvalCharacter] = []
        for (i, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let c: EvalCharacter
            do { c = try JSONDecoder().decode(EvalCharacter.self, from: Data(line.utf8)) } catch {
                throw StudioError.badInput("\(path):\(i + 1): \(ConfigDecoding.describe(error)); expected {\"name\": …, \"prompt\": …[, \"base_word\": …]}")
            }
            out.append(c)
        }
        guard !out.isEmpty else { throw StudioError.badInput("\(path): no characters") }
        return out
    }

    func loadPrompts() throws -> [String] {
        guard let path = prompts else { return EvalProtocol.prompts }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw StudioError.badInput("\(path): cannot read the prompts file") }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw StudioError.badInput("\(path): no prompts") }
        return lines
    }
}
