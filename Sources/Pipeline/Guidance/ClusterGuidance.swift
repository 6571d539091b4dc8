// OneActor's cluster-conditioned guidance (arXiv 2404.10267, §3.3 and eq. 10; design §3):
//   ε = ε_u + η1·(ε_target − ε_u) − η2·(ε_aux − ε_u)
// where ε_target is the prompt with the character's offset δ_target at its base word (the
// `.conditional` branch), ε_aux the prompt with the mean auxiliary offset, and ε_u the negative
// prompt. It applies on the steps in `steps` (0-based, half-open); elsewhere plain
// classifier-free guidance with `outsideScale` on the prompt *without* the offset (`.plain`),
// as the public code's pipeline does outside its `delta_steps` (it switches to
// `prompt_embeds_origin`): the character is set while the image's layout and colours form and
// the last steps finish the prompt's own details. With η2 = 0 the auxiliary branch is not
// evaluated (one fewer batch group per step).
//
// With `subjectMask` (Troupe's addition, off unless asked): the formula applies only where the
// subject is — the bounding box (SubjectMask.boxed) of SubjectMask's DiffEdit mask from the
// prompt without the offset (`.plain`) and the prompt without its subject (`.subjectless`), both
// evaluated every step in range — and plain classifier-free guidance at η1 on the prompt without
// the offset elsewhere:
//   ε = M⊙ε_cluster + (1 − M)⊙(ε_u + η1·(ε_plain − ε_u)),
// so the character's offset changes the character and not what the rest of the prompt draws
// around it (background, an emote, props) — Prompt-to-Prompt's local blending (Hertz et al.
// 2022, §3.3) with DiffEdit's mask instead of the word's attention maps. Two more branches a
// step.

public struct ClusterGuidance: Guidance {
    public var eta1: Float
    public var eta2: Float
    public var steps: Range<Int>
    public var outsideScale: Float
    public var subjectMask: Bool

    public init(eta1: Float, eta2: Float, steps: Range<Int>, outsideScale: Float, subjectMask: Bool = false) {
        self.eta1 = eta1; self.eta2 = eta2; self.steps = steps; self.outsideScale = outsideScale; self.subjectMask = subjectMask
    }

    var fallback: ClassifierFreeGuidance { ClassifierFreeGuidance(scale: outsideScale, prompt: .plain) }

    public func branches(atStep index: Int, of total: Int) -> [GuidanceBranch] {
        guard steps.contains(index) else { return fallback.branches(atStep: index, of: total) }
        let cluster: [GuidanceBranch] = eta2 != 0 ? [.unconditional, .conditional, .auxiliary] : [.unconditional, .conditional]
        return subjectMask ? cluster + [.plain, .subjectless] : cluster
    }

    public func combine(_ outputs: [GuidanceBranch: Tensor], atStep index: Int, of total: Int) -> Tensor {
        guard steps.contains(index) else { return fallback.combine(outputs, atStep: index, of: total) }
        let u = outputs[.unconditional]!, target = outputs[.conditional]!
        var e = u + (target - u) * eta1
        if eta2 != 0, let aux = outputs[.auxiliary] { e = e - (aux - u) * eta2 }
        guard subjectMask else { return e }
        let plain = outputs[.plain]!
        let m = SubjectMask.boxed(SubjectMask.diffEdit(prompt: plain, subjectless: outputs[.subjectless]!))
        let outside = u + (plain - u) * eta1
        return outside + (e - outside) * m
    }
}
