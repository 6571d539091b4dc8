// CLIP text transformer, as transformers' CLIPTextModel (models/clip/modeling_clip.py):
//   h₀ = token_embedding[ids] + position_embedding[0..<L]
//   h ← h + attn(LN₁ h)  (causal self-attention, scale d_head^-½)
//   h ← h + fc2(act(fc1(LN₂ h)))
//   out = final_layer_norm(h_L)
// Keys as saved by transformers 5 ("embeddings.…", "encoder.layers.N.…") or 4.x
// ("text_model." in front); single-file A1111 checkpoints are mapped to the same names.
// `clipSkip` follows A1111: skip k takes the hidden state k−1 layers before the last and
// applies the final layer norm.

public struct CLIPTextModel {
    struct Layer {
        let ln1: LayerNorm, ln2: LayerNorm
        let q: Linear, k: Linear, v: Linear, out: Linear
        let fc1: Linear, fc2: Linear
    }

    public let config: CLIPTextConfig
    /// Every Linear (and Conv2d) layer by module path, for attaching LoRA adapters.
    public let linears: [String: Linear]
    public let convs: [String: Conv2d]
    let tokenEmbedding: Tensor, positionEmbedding: Tensor
    let layers: [Layer]
    let finalNorm: LayerNorm
    let activation: Activation

    public init(config: CLIPTextConfig, weights reader: WeightReader, configFile: String = "text_encoder/config.json") throws {
        try config.validate(file: configFile)
        self.config = config
        activation = try config.activation
        let root = reader.has("text_model.embeddings.token_embedding.weight") ? reader.scope("text_model.") : reader.scope("")
        let d = config.hiddenSize, eps = config.layerNormEps
        tokenEmbedding = try root("embeddings")("token_embedding").tensor("weight", [config.vocabSize, d])
        positionEmbedding = try root("embeddings")("position_embedding").tensor("weight", [config.maxPositionEmbeddings, d])
        layers = try (0..<config.numHiddenLayers).map { i in
            let l = root("encoder")("layers")("\(i)")
            let a = l("self_attn")
            return Layer(ln1: try LayerNorm(l("layer_norm1"), dim: d, eps: eps), ln2: try LayerNorm(l("layer_norm2"), dim: d, eps: eps),
                         q: try Linear(a("q_proj"), in: d, out: d), k: try Linear(a("k_proj"), in: d, out: d),
                         v: try Linear(a("v_proj"), in: d, out: d), out: try Linear(a("out_proj"), in: d, out: d),
                         fc1: try Linear(l("mlp")("fc1"), in: d, out: config.intermediateSize),
                         fc2: try Linear(l("mlp")("fc2"), in: config.intermediateSize, out: d))
        }
        finalNorm = try LayerNorm(root("final_layer_norm"), dim: d, eps: eps)
        linears = reader.linears
        convs = reader.convs
    }

    /// Root-mean-square of the token embeddings' entries: the scale of an input-site offset.
    public var tokenEmbeddingScale: Float { (tokenEmbedding.square().mean().item()).squareRoot() }

    /// Context for the UNet: [B, L, hidden] from token ids [B][L]. `inputOffset` adds a vector
    /// [1 or B, hidden] to the token embeddings at `positions` before the encoder runs
    /// (textual-inversion style; OneActor's input-site offset), differentiably.
    public func callAsFunction(_ ids: [[Int]], clipSkip: Int = 1, inputOffset: (positions: [Int], offset: Tensor)? = nil) -> Tensor {
        precondition(clipSkip >= 1 && clipSkip <= layers.count, "clip skip \(clipSkip) outside 1…\(layers.count)")
        let b = ids.count, l = ids[0].count
        precondition(l <= config.maxPositionEmbeddings, "\(l) tokens exceed \(config.maxPositionEmbeddings) positions")
        var h = tokenEmbedding.gatherRows(ids.flatMap { $0 }, shape: [b, l]) + positionEmbedding.sliced(0, 0..<l)
        if let inputOffset { h = h.addingAtPositions(inputOffset.positions, inputOffset.offset) }
        let heads = config.numAttentionHeads
        for layer in layers.prefix(layers.count - (clipSkip - 1)) {
            let x = layer.ln1(h)
            h = h + layer.out(Tensor.attention(q: layer.q(x), k: layer.k(x), v: layer.v(x), heads: heads, causal: true))
            h = h + layer.fc2(layer.fc1(layer.ln2(h)).activated(activation))
        }
        return finalNorm(h)
    }
}
