// The texts a stage tuner conditions on — the character's prompt, the class prompt, stage 3's
// prompt × pose × expression — as UNet context. While the text encoder is frozen each text is
// encoded once; when the tuner trains LoRA adapters on the text encoder too (kohya's and
// diffusers' train_dreambooth_lora `--train_text_encoder`), every use encodes it again through
// the adapters, so they get gradients.

final class TuningPrompts {
    let pipeline: StableDiffusionPipeline
    let trainsEncoder: Bool
    private var ids: [String: [Int]] = [:]
    private var frozen: [String: Tensor] = [:]

    init(pipeline: StableDiffusionPipeline, trainsEncoder: Bool) {
        self.pipeline = pipeline; self.trainsEncoder = trainsEncoder
    }

    /// [1, L, width] context of `text`.
    func context(_ text: String) -> Tensor {
        if trainsEncoder { return pipeline.textEncoder([tokens(text)]) }
        if let c = frozen[text] { return c }
        let c = GradMode.noGrad { pipeline.textEncoder([tokens(text)]) }
        frozen[text] = c
        return c
    }

    /// [B, L, width] contexts of `texts`, one encoder call for the distinct ones.
    func contexts(_ texts: [String]) -> Tensor {
        guard trainsEncoder else { return Tensor.concat(texts.map(context), dim: 0) }
        let distinct = Array(Set(texts)).sorted()
        let encoded = pipeline.textEncoder(distinct.map(tokens))
        if distinct == texts { return encoded }
        return encoded.selectingRows(texts.map { distinct.firstIndex(of: $0)! })
    }

    /// `text`'s token ids, tokenized once.
    private func tokens(_ text: String) -> [Int] {
        if let t = ids[text] { return t }
        let t = pipeline.tokenizer.encode(text)
        ids[text] = t
        return t
    }
}
