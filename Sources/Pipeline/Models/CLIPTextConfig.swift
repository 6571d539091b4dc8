// transformers' CLIPTextConfig fields that change the math (text_encoder/config.json).

import Foundation

public struct CLIPTextConfig: Codable, Sendable, Equatable {
    public var vocabSize: Int = 49408
    public var hiddenSize: Int = 768
    public var intermediateSize: Int = 3072
    public var numHiddenLayers: Int = 12
    public var numAttentionHeads: Int = 12
    public var maxPositionEmbeddings: Int = 77
    public var hiddenAct: String = "quick_gelu"
    public var layerNormEps: Float = 1e-5

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case maxPositionEmbeddings = "max_position_embeddings", hiddenAct = "hidden_act", layerNormEps = "layer_norm_eps"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CLIPTextConfig()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? d.maxPositionEmbeddings
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenAct
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? d.layerNormEps
    }

    public var activation: Activation {
        get throws {
            switch hiddenAct {
            case "quick_gelu": return .quickGELU
            case "gelu": return .gelu
            case "gelu_new", "gelu_pytorch_tanh": return .geluTanh
            default: throw WeightsError.badConfig(file: "text_encoder/config.json", reason: "hidden_act '\(hiddenAct)' is not supported (quick_gelu, gelu, gelu_new)")
            }
        }
    }

    /// Sizes within what CLIP text encoders use, heads dividing the width.
    public func validate(file: String) throws {
        func bad(_ key: String, _ why: String) -> WeightsError { .badConfig(file: file, reason: "\(key) \(why)") }
        for (k, v, hi) in [("vocab_size", vocabSize, 1 << 20), ("hidden_size", hiddenSize, 8192), ("intermediate_size", intermediateSize, 65536),
                           ("num_hidden_layers", numHiddenLayers, 128), ("num_attention_heads", numAttentionHeads, 256),
                           ("max_position_embeddings", maxPositionEmbeddings, 4096)] where !(1...hi).contains(v) {
            throw bad(k, "is \(v); must be in 1…\(hi)")
        }
        guard hiddenSize % numAttentionHeads == 0 else { throw bad("num_attention_heads", "= \(numAttentionHeads) does not divide hidden_size \(hiddenSize)") }
        guard maxPositionEmbeddings >= 77 else { throw bad("max_position_embeddings", "is \(maxPositionEmbeddings); prompts are 77 tokens") }
        guard layerNormEps.isFinite, layerNormEps > 0 else { throw bad("layer_norm_eps", "must be a positive number") }
    }
}
