// How `troupe eval` makes the images of the methods that are more than one prompt: OneActor
// (tuned per character from its prompt's own generation, then sampled with the adapter and
// cluster guidance) and the `reference` ceiling (the World's own renders of one fixed identity
// per character, in each prompt's scene, through the VAE round trip: what the judge gives a
// perfectly consistent character).

import Foundation

extension EvalCharacter {
    /// The word OneActor's offset goes to: `baseWord` when given, else the class word the
    /// prompt names.
    public func resolvedBaseWord() throws -> String {
        if let baseWord { return baseWord }
        if let c = IdentityPhrases.named(in: prompt)[.characterClass], let w = WorldClass(rawValue: c) { return w.word }
        throw EvalError.badCharacters("character '\(name)': its prompt names no class word; give it a \"base_word\"")
    }

    /// The same character's base word alone ("a cowboy" for "a cowboy dressed in orange"): what
    /// `class_consistency` generates under a method's tuning, to see whether the tuning made
    /// every cowboy this one (the drift DreamBooth's prior preservation is there to stop).
    public func classOnly() throws -> EvalCharacter {
        let word = try resolvedBaseWord()
        return EvalCharacter(name: name, prompt: IdentityPhrases.article(word) + " " + word, baseWord: word)
    }
}

public enum EvalGeneration {
    /// A OneActor adapter for `character`: cluster data from its prompt generated at `seed`
    /// (the target; `targetImage`, [1, 3, H, W] in [−1, 1], instead when given — an accepted
    /// reference, as `tune oneactor` takes a character's first) and `auxiliaries` more seeds, then
    /// `config.steps` tuning steps, their draws from `seed` + `tuningDraw` — `tunings` times (the
    /// k-th from that seed + k·7919: a soup's members, OneActorAdapter.soup), one adapter each.
    public static func oneActor(pipeline: StableDiffusionPipeline, character: EvalCharacter, seed: UInt64, targetImage: Tensor? = nil,
                                tuningDraw: UInt64 = 0, auxiliaries: Int = 10,
                                config: OneActorConfig = OneActorConfig(), identityEncoder: IdentityEncoder? = nil, judge: AttributeClassifier? = nil,
                                tunings: Int = 1, directory: String) throws -> (adapters: [OneActorAdapter], targetLatents: Tensor) {
        var r = pipeline.request(prompt: character.prompt)
        r.seed = seed
        let cluster = try OneActorCluster.build(pipeline: pipeline, request: r, baseWord: try character.resolvedBaseWord(), targetImage: targetImage,
                                                auxiliaries: auxiliaries, model: pipeline.fingerprint)
        // One cluster; each tuning its own projector (tuning k from the soup member's seed).
        let adapters = try (0..<max(1, tunings)).map { k -> OneActorAdapter in
            var c = config
            c.seed = AppearanceTuningConfig.soupMemberSeed(seed &+ tuningDraw, member: k)
            let dir = tunings > 1 ? directory + "-\(k)" : directory
            defer { if tunings > 1 { try? FileManager.default.removeItem(atPath: dir) } }
            let tuner = try OneActorTuner(pipeline: pipeline, cluster: cluster, config: c, directory: dir, identityEncoder: identityEncoder, judge: judge)
            try TrainingLoop.run(tuner) { _ in true }
            return OneActorAdapter(projector: tuner.projector, cluster: cluster, site: c.offsetSite)
        }
        return (adapters, cluster.latents.sliced(0, 0..<1).contiguous())
    }

    /// `count` reference images for `character` under `prompt`: its full identity in the
    /// prompt's scene (attributes the prompt does not name drawn from `seed`), rendered and
    /// passed through the VAE (posterior mean, decode).
    public static func reference(vae: AutoencoderKL, character: EvalCharacter, prompt: EvalPrompt, count: Int, seed: UInt64) -> [[UInt8]] {
        var r = SplitMixRandom(seed: seed)
        let id = character.fullIdentity
        let renders: [[UInt8]] = (0..<count).map { _ in
            var scene = World.randomScene(&r)
            if let v = prompt.expected[.pose], let x = Pose(rawValue: v) { scene.pose = x }
            if let v = prompt.expected[.expression], let x = Expression(rawValue: v) { scene.expression = x }
            if let v = prompt.expected[.background], let x = Background(rawValue: v) { scene.background = x }
            if let v = prompt.expected[.view], let x = View(rawValue: v) { scene.view = x }
            return World.render(id, scene)
        }
        return GradMode.noGrad {
            let x = WorldBatch.tensor(rgb8: renders, size: World.imageSize)
            return vae.decode(vae.encode(x).mean).rgb8Images()
        }
    }

    /// Four "accepted references" of `character`: its full identity in random scenes (a seed
    /// stream apart from the evaluation prompts'), through the VAE round trip, [1, 3, 64, 64].
    public static func acceptedReferences(vae: AutoencoderKL, character: EvalCharacter, count: Int = 4, seed: UInt64) -> [Tensor] {
        var r = SplitMixRandom(seed: seed ^ 0xACCE_97ED)
        let renders = (0..<count).map { _ in World.render(character.fullIdentity, World.randomScene(&r)) }
        return GradMode.noGrad {
            let x = WorldBatch.tensor(rgb8: renders, size: World.imageSize)
            let y = vae.decode(vae.encode(x).mean).clamped(-1, 1).contiguous()
            return (0..<count).map { y.selectingRows([$0]).contiguous() }
        }
    }

    /// Trains stage 1 (and with `throughStage` 2, stage 2) on `references` and leaves the
    /// final stage's adapters attached to the pipeline's UNet; the caller removes them with
    /// `removeAdapters`. Class images for stage 2 are drawn before any adapter is attached.
    /// Returns the last stage's summary offset when `stage1` learns one (learnsSummaryOffset).
    @discardableResult
    public static func stages(pipeline: StableDiffusionPipeline, character: EvalCharacter, references: [Tensor], seed: UInt64,
                              throughStage: Int, stage1: AppearanceTuningConfig = AppearanceTuningConfig(), encoder: IdentityEncoder?,
                              judge: AttributeClassifier? = nil, identity: TuningIdentity? = nil, identityScale: Float = 0,
                              directory: String) throws -> SummaryOffset? {
        let baseWord = try character.resolvedBaseWord()
        let classPrompt = PriorPreservation.classPrompt(baseWord: baseWord)
        // The class images `tune stage2` draws (the same for every character of one base word).
        let classImages = throughStage >= 2 ? try PriorPreservation.classImages(pipeline: pipeline, baseWord: baseWord) : []
        var c1 = stage1; c1.seed = seed
        c1.identityAdapterScale = identity == nil ? 0 : identityScale
        let s1 = try AppearanceTuner(pipeline: pipeline, references: references, prompt: character.prompt, config: c1, directory: directory + "/1",
                                     identity: identity, baseWord: baseWord)
        try TrainingLoop.run(s1) { _ in true }
        guard throughStage >= 2 else { return s1.summaryOffset }
        let start = s1.lora.mapValues { $0.detached().clone() }
        removeAdapters(pipeline)
        let c2 = AppearanceTuningConfig.stage2(from: c1, hasIdentityEncoder: encoder != nil)
        let s2 = try AppearanceTuner(pipeline: pipeline, references: references, prompt: character.prompt, config: c2, directory: directory + "/2",
                                     startFrom: start, identityEncoder: encoder, classImages: classImages, classPrompt: classPrompt,
                                     identity: identity, baseWord: baseWord)
        try TrainingLoop.run(s2) { _ in true }
        guard throughStage >= 3, let judge else { return s2.summaryOffset }
        let start3 = s2.lora.mapValues { $0.detached().clone() }
        removeAdapters(pipeline)
        let c3 = AppearanceTuningConfig.stage3(from: c2)
        let s3 = try AppearanceTuner(pipeline: pipeline, references: references, prompt: character.prompt, config: c3, directory: directory + "/3",
                                     startFrom: start3, identityEncoder: encoder, classImages: classImages, classPrompt: classPrompt, judge: judge,
                                     identity: identity, baseWord: baseWord)
        try TrainingLoop.run(s3) { _ in true }
        return s3.summaryOffset
    }

    /// Removes every adapter from the pipeline's UNet and text encoder (between characters).
    public static func removeAdapters(_ pipeline: StableDiffusionPipeline) {
        for l in pipeline.unet.linears.values { l.adapters.removeAll() }
        for c in pipeline.unet.convs.values { c.adapters.removeAll() }
        for l in pipeline.textEncoder.linears.values { l.adapters.removeAll() }
    }
}
