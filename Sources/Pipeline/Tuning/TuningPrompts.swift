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
        let tokens = ids[text] ?? pipeline.tokenizer.encode(text)
        ids[text] = tokens
        if trainsEncoder { return pipeline.textEncoder([tokens]) }
        if let c = frozen[text] { return c }
        let c = GradMode.noGrad { pipeline.textEncoder([tokens]) }
        frozen[text] = c
        return c
    }

    /// [B, L, width] contexts of `texts`, one encoder call for the distinct ones.
    func contexts(_ texts: [String]) -> Tensor {
        guard trainsEncoder else { return Tensor.concat(texts.map(context), dim: 0) }
        let distinct = Array(Set(texts)).sorted()
        let encoded = pipeline.textEncoder(distinct.map { t in
            let tokens = ids[t] ?? pipeline.tokenizer.encode(t)
            ids[t] = tokens
            return tokens
        })
        if distinct.count == texts.count, distinct == texts { return encoded }
        return encoded.selectingRows(texts.map { distinct.firstIndex(of: $0)! })
    }
}
