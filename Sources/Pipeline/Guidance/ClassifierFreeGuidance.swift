// Classifier-free guidance (Ho & Salimans 2022, eq. 6), as diffusers' StableDiffusionPipeline:
//   ε = ε_u + s·(ε_c − ε_u)   when s > 1 (do_classifier_free_guidance),
//   ε = ε_c                   otherwise: the unconditional branch is not evaluated at all.

public struct ClassifierFreeGuidance: Guidance {
    public var scale: Float
    /// The branch that plays the prompt (`.plain` where OneActor's offset is left out).
    public var prompt: GuidanceBranch
    public init(scale: Float, prompt: GuidanceBranch = .conditional) { self.scale = scale; self.prompt = prompt }

    public var isGuided: Bool { scale > 1 }

    public func branches(atStep index: Int, of total: Int) -> [GuidanceBranch] {
        isGuided ? [.unconditional, prompt] : [prompt]
    }

    public func combine(_ outputs: [GuidanceBranch: Tensor], atStep index: Int, of total: Int) -> Tensor {
        let cond = outputs[prompt]!
        guard isGuided, let uncond = outputs[.unconditional] else { return cond }
        return uncond + (cond - uncond) * scale
    }
}
