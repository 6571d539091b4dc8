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
    /// The metadata field with the learning-rate multiple it was tuned at (what a later stage continues with).
    public static let learningRateScaleField = "troupe_summary_offset_lr_scale"

    public let delta: Tensor
    public let baseWord: String
    /// The learning-rate multiple it was tuned at (nil: not recorded; a later stage then takes
    /// the model's default).
    public let learningRateScale: Float?

    public init(delta: Tensor, baseWord: String, learningRateScale: Float? = nil) {
        self.delta = delta; self.baseWord = baseWord
        self.learningRateScale = learningRateScale.flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
    }

    /// The LoRA file metadata that goes with δ (read back by `read(from:)`).
    public var metadata: [String: String] {
        var m = [Self.baseWordField: baseWord]
        if let learningRateScale { m[Self.learningRateScaleField] = String(learningRateScale) }
        return m
    }

    /// The offset's weight when its LoRA is sampled at multiplier `m`: the multiplier fades the
    /// whole tuning in up to 1 (at 0 the base model), and past 1 extrapolates the LoRA's weights
    /// only — the offset stays as trained (the model's recommended ×1.2 was measured that way).
    public static func weight(atLoRAMultiplier m: Float) -> Float { min(1, m) }

    /// Its token positions in `prompt` (a prompt without the base word is an error).
    public static func positions(baseWord: String, in prompt: String, tokenizer: CLIPTokenizer) throws -> [Int] {
        try OffsetSite.summary.positions(of: baseWord, in: prompt, tokenizer: tokenizer)
    }

    /// ‖δ‖.
    public var norm: Float { delta.square().sum().item().squareRoot() }

    /// `conditioning` with δ, weighed for its LoRA's multiplier `loraMultiplier` (`weight`), added
    /// to each prompt branch of `prompt` (the conditional one, and OneActor's plain and auxiliary
    /// ones where present) at its positions; an offset a branch already carries (OneActor's)
    /// stays, folded into its context first.
    public func apply(to conditioning: Conditioning, prompt: String, tokenizer: CLIPTokenizer, loraMultiplier: Float = 1) throws -> Conditioning {
        guard loraMultiplier.isFinite else { throw GenerationError.badValue("the LoRA multiplier must be a finite number") }
        let scale = Self.weight(atLoRAMultiplier: loraMultiplier)
        if let c = conditioning.branches[.conditional], delta.shape != [1, c.context.shape[2]] {
            throw GenerationError.badValue("the summary offset is \(delta.shape), not [1, \(c.context.shape[2])]: it was tuned on another model")
        }
        let positions = try Self.positions(baseWord: baseWord, in: prompt, tokenizer: tokenizer)
        var out = conditioning
        for branch in [GuidanceBranch.conditional, .plain, .auxiliary] {
            guard let c = out.branches[branch] else { continue }
            out.branches[branch] = TextConditioning(context: c.resolved(), basePositions: positions, offset: delta * scale,
                                                    maskedPositions: c.maskedPositions)
        }
        return out
    }

    /// The offset a LoRA file carries (nil: none); one without the base word it was learned at,
    /// or not one vector, is an error naming the file.
    public static func read(from file: SafetensorsFile) throws -> SummaryOffset? {
        guard file.names.contains(key) else { return nil }
        let delta = try file.tensor(key).clone()
        guard delta.rank == 2, delta.shape[0] == 1, delta.shape[1] > 0 else {
            throw WeightsError.unsupported(file: file.path, reason: "its summary offset '\(key)' is \(delta.shape), not one vector [1, width]")
        }
        guard let word = file.metadata[baseWordField], !word.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw WeightsError.unsupported(file: file.path, reason: "it has a summary offset but no '\(baseWordField)' metadata naming the word it goes to")
        }
        return SummaryOffset(delta: delta, baseWord: word, learningRateScale: file.metadata[learningRateScaleField].flatMap(Float.init))
    }

    /// The soup of several tunings' offsets (LoRASoup's uniform soup, applied to δ): their mean,
    /// rescaled to their mean norm when `normMatched`, at the first member's rate. They must share
    /// one base word and width.
    public static func soup(of members: [SummaryOffset], normMatched: Bool) throws -> SummaryOffset {
        guard let first = members.first else { throw GenerationError.badValue("a soup needs at least one tuning") }
        guard members.allSatisfy({ $0.baseWord == first.baseWord && $0.delta.shape == first.delta.shape }) else {
            throw GenerationError.badValue("the tunings' summary offsets differ in base word or width: they are not tunings of one character")
        }
        let k = Float(members.count)
        var mean = members.dropFirst().reduce(first.delta) { $0 + $1.delta } * (1 / k)
        if normMatched {
            let target = members.map(\.norm).reduce(0, +) / k, n = SummaryOffset(delta: mean, baseWord: first.baseWord).norm
            if n > 0 { mean = mean * (target / n) }
        }
        return SummaryOffset(delta: mean.contiguous(), baseWord: first.baseWord, learningRateScale: first.learningRateScale)
    }
}
