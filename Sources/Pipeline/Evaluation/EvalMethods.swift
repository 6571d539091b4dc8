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
}

public enum EvalGeneration {
    /// A OneActor adapter for `character`: cluster data from its prompt generated at `seed`
    /// (the target) and `auxiliaries` more seeds, then `config.steps` tuning steps.
    public static func oneActor(pipeline: StableDiffusionPipeline, character: EvalCharacter, seed: UInt64, auxiliaries: Int = 10,
                                config: OneActorConfig = OneActorConfig(), directory: String) throws -> OneActorAdapter {
        var r = pipeline.request(prompt: character.prompt)
        r.seed = seed
        let cluster = try OneActorCluster.build(pipeline: pipeline, request: r, baseWord: try character.resolvedBaseWord(), targetImage: nil,
                                                auxiliaries: auxiliaries, model: pipeline.fingerprint)
        var c = config
        c.seed = seed
        let tuner = try OneActorTuner(pipeline: pipeline, cluster: cluster, config: c, directory: directory)
        try TrainingLoop.run(tuner) { _ in true }
        return OneActorAdapter(projector: tuner.projector, cluster: cluster, site: c.offsetSite)
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
}
