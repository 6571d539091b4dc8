// One protocol for how a denoising step combines the UNet's outputs into one prediction per
// image (design §2). The denoise loop asks the guidance which conditioning branches it needs at
// a step, runs the UNet once on all of them (one batch), and hands the outputs back; it never
// knows which formula runs. Guidance works on the model's prediction (ε or v) as diffusers
// does: both are linear in the branches, so the same combination applies.

/// A row group of the batch: every image is evaluated under each branch the guidance asks for.
public enum GuidanceBranch: Int, Hashable, Sendable, CaseIterable {
    /// The negative prompt (empty: the unconditional model).
    case unconditional
    /// The prompt (with the character's offset δ at its base word, when one is attached).
    case conditional
    /// The prompt with the mean auxiliary offset (OneActor's exclusion branch).
    case auxiliary
    /// The prompt as written, without the character's offset: OneActor's steps outside its
    /// guidance range (the public code's `prompt_embeds_origin`).
    case plain
    /// The prompt without its subject (the character's own prompt, else its base word): with
    /// `.plain`, where the subject is (SubjectMask).
    case subjectless
}

public protocol Guidance: Sendable {
    /// The branches to evaluate at step `index` of `total`, in batch order.
    func branches(atStep index: Int, of total: Int) -> [GuidanceBranch]
    /// One prediction per image from the outputs of `branches(atStep:of:)`, each [count, C, h, w].
    func combine(_ outputs: [GuidanceBranch: Tensor], atStep index: Int, of total: Int) -> Tensor
}
