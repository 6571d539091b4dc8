// A stage LoRA's pivotal offset: one vector δ [1, d] learned together with the LoRA (pivotal
// tuning — a textual-inversion embedding trained jointly with the adapters, as diffusers'
// advanced DreamBooth LoRA script's `--train_text_encoder_ti` and The Chosen One's LoRA + token
// pair), added to the text encoder's output at the character's base word and at the prompt's
// summary tokens (its end token and the padding after it: OneActor's summary site,
// OffsetSite.summary), where the causal encoder has read every word of the prompt. Unlike
// OneActor's δ it is not predicted from a target's features and takes no guidance of its own:
// it is part of the tuned model, so every prompt branch (not the unconditional one) reads it.

public struct SummaryOffset {
    /// Its key in a tuner's tensors, checkpoints and LoRA file (not a LoRA key: LoRAFile skips it).
    public static let key = "troupe.summary_offset"
    /// The LoRA file's metadata field naming the base word it was learned at.
    public static let baseWordField = "troupe_base_word"

    public let delta: Tensor
    public let baseWord: String

    public init(delta: Tensor, baseWord: String) {
        self.delta = delta; self.baseWord = baseWord
    }

    /// Its token positions in `prompt` (a prompt without the base word is an error).
    public static func positions(baseWord: String, in prompt: String, tokenizer: CLIPTokenizer) throws -> [Int] {
        try OffsetSite.summary.positions(of: baseWord, in: prompt, tokenizer: tokenizer)
    }

    /// `conditioning` with δ (times `scale`) added to each prompt branch of `prompt` (the
    /// conditional one, and OneActor's plain and auxiliary ones where present) at its positions;
    /// an offset a branch already carries (OneActor's) stays, folded into its context first.
    public func apply(to conditioning: Conditioning, prompt: String, tokenizer: CLIPTokenizer, scale: Float = 1) throws -> Conditioning {
        guard scale.isFinite else { throw GenerationError.badValue("the summary offset's scale must be a finite number") }
        let positions = try Self.positions(baseWord: baseWord, in: prompt, tokenizer: tokenizer)
        var out = conditioning
        for branch in [GuidanceBranch.conditional, .plain, .auxiliary] {
            guard let c = out.branches[branch] else { continue }
            out.branches[branch] = TextConditioning(context: c.resolved(), basePositions: positions, offset: delta * scale,
                                                    maskedPositions: c.maskedPositions)
        }
        return out
    }
}
