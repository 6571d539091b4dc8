// The identity adapter (design §4): IP-Adapter's decoupled cross-attention (Ye et al. 2023,
// arXiv 2308.06721 eq. 5) fed by the IdentityEncoder's vector instead of a CLIP image embedding.
//   tokens c_i = LayerNorm(reshape(W_p·e + b_p, [4, d]))      (diffusers' ImageProjection)
//   at every cross-attention layer: Z = Attn(Q, K_text, V_text) + s·Attn(Q, c_i W_k', c_i W_v')
// the second term added before to_out, as diffusers' IPAdapterAttnProcessor2_0 does. The file
// layout is the one diffusers' `load_ip_adapter` reads from a .safetensors IP-Adapter:
// "image_proj.proj.{weight,bias}", "image_proj.norm.{weight,bias}" and
// "ip_adapter.<k>.to_{k,v}_ip.weight", k = 1, 3, 5, … numbering the cross-attention layers in
// unet.attn_processors order (down blocks, up blocks, then the mid block); four tokens, as
// diffusers assumes for a file with "proj.weight". Troupe's metadata also records the model it
// was trained on (so one for another model is refused by name) and the encoder.

import Foundation

public enum IdentityAdapterError: Error, CustomStringConvertible {
    case corrupt(String, String)
    case otherModel(path: String, made: String, now: String)

    public var description: String {
        switch self {
        case let .corrupt(p, why): return "\(p): \(why)"
        case let .otherModel(p, made, now):
            return "\(p) is an identity adapter for the model '\(made)'; the model loaded now is '\(now)' (train one for it: troupe identity train)"
        }
    }
}

public final class IdentityAdapter {
    /// Context tokens per identity (IP-Adapter's; diffusers reads four from this file layout).
    public static let tokenCount = 4
    /// The identity scale s when nothing sets it (IP-Adapter's default).
    public static let defaultScale: Float = 1

    /// Identity-vector width (the IdentityEncoder's 128 for Troupe's adapters).
    public let embedDim: Int
    /// Text-context width of the UNet it attaches to.
    public let contextDim: Int
    /// Every trainable tensor by file key.
    public let parameters: [String: Tensor]
    /// Cross-attention layers (module paths "…attn2") in diffusers' attn_processors order.
    public let layers: [String]
    /// Each layer's index in `layers` (its file keys' number).
    let layerIndex: [String: Int]

    init(parameters: [String: Tensor], layers: [String], embedDim: Int, contextDim: Int) {
        self.parameters = parameters; self.layers = layers; self.embedDim = embedDim; self.contextDim = contextDim
        layerIndex = Dictionary(uniqueKeysWithValues: layers.enumerated().map { ($0.element, $0.offset) })
    }

    /// The UNet's cross-attention layers in diffusers' attn_processors order, with each one's
    /// inner width (to_k's output).
    public static func crossAttentionLayers(of unet: UNet2DConditionModel) -> [(path: String, inner: Int)] {
        func rank(_ path: String) -> [Int] {
            let parts = path.split(separator: ".")
            let group = parts[0] == "down_blocks" ? 0 : parts[0] == "up_blocks" ? 1 : 2
            return [group] + parts.compactMap { Int($0) }
        }
        return unet.linears.filter { $0.key.hasSuffix(".attn2.to_k") }
            .map { (path: String($0.key.dropLast(".to_k".count)), inner: $0.value.outFeatures) }
            .sorted { rank($0.path).lexicographicallyPrecedes(rank($1.path)) }
    }

    static func key(layer index: Int, _ which: String) -> String { "ip_adapter.\(2 * index + 1).\(which).weight" }

    /// A new adapter for `unet`: the projection random (small), the norm identity, and each
    /// layer's W_k', W_v' copied from its text W_k, W_v (the IP-Adapter training code's
    /// initialisation, so identity tokens start out read like text tokens).
    public static func initial(for unet: UNet2DConditionModel, embedDim: Int = IdentityEncoder.dimension, seed: UInt64) -> IdentityAdapter {
        let d = unet.config.crossAttentionDim
        var r = SplitMixRandom(seed: seed)
        let bound = 1 / Float(embedDim).squareRoot()
        var p: [String: Tensor] = [
            "image_proj.proj.weight": Tensor.rand([tokenCount * d, embedDim], low: -bound, high: bound, using: &r),
            "image_proj.proj.bias": Tensor(filled: 0, shape: [tokenCount * d]),
            "image_proj.norm.weight": Tensor(filled: 1, shape: [d]),
            "image_proj.norm.bias": Tensor(filled: 0, shape: [d]),
        ]
        let layers = crossAttentionLayers(of: unet)
        for (i, l) in layers.enumerated() {
            p[key(layer: i, "to_k_ip")] = unet.linears[l.path + ".to_k"]!.weight.tensor.clone()
            p[key(layer: i, "to_v_ip")] = unet.linears[l.path + ".to_v"]!.weight.tensor.clone()
        }
        return IdentityAdapter(parameters: p, layers: layers.map(\.path), embedDim: embedDim, contextDim: d)
    }

    /// Loads an adapter file for `unet`; `model` (when given) must be the one it was trained on.
    public static func load(path: String, unet: UNet2DConditionModel, model: String? = nil) throws -> IdentityAdapter {
        let f: SafetensorsFile
        do { f = try SafetensorsFile(path: path) } catch { throw IdentityAdapterError.corrupt(path, "not a safetensors identity adapter (\(error))") }
        if let model, let made = f.metadata["model"], made != model { throw IdentityAdapterError.otherModel(path: path, made: made, now: model) }
        guard let proj = try? f.entry("image_proj.proj.weight"), proj.shape.count == 2 else {
            throw IdentityAdapterError.corrupt(path, "no image_proj.proj.weight: not an IP-Adapter-style identity adapter")
        }
        let d = unet.config.crossAttentionDim
        guard proj.shape[0] == tokenCount * d else {
            throw IdentityAdapterError.corrupt(path, "image_proj.proj.weight is \(proj.shape), this model needs [\(tokenCount * d), …] (\(tokenCount) tokens of its context width \(d)): an adapter for another architecture")
        }
        let e = proj.shape[1]
        let layers = crossAttentionLayers(of: unet)
        let reader = WeightReader(files: [f])
        var p: [String: Tensor] = [:]
        func read(_ k: String, _ shape: [Int]) throws {
            do { p[k] = try reader.tensor(k, shape: shape).contiguous().clone() } catch { throw IdentityAdapterError.corrupt(path, "\(error)") }
        }
        try read("image_proj.proj.weight", [tokenCount * d, e]); try read("image_proj.proj.bias", [tokenCount * d])
        try read("image_proj.norm.weight", [d]); try read("image_proj.norm.bias", [d])
        for (i, l) in layers.enumerated() {
            try read(key(layer: i, "to_k_ip"), [l.inner, d]); try read(key(layer: i, "to_v_ip"), [l.inner, d])
        }
        let extra = f.entries.keys.filter { p[$0] == nil }.sorted()
        guard extra.isEmpty else {
            throw IdentityAdapterError.corrupt(path, "holds '\(extra[0])', which this model has no layer for (an adapter for another architecture)")
        }
        for t in p.values where !t.isAllFinite { throw IdentityAdapterError.corrupt(path, "holds NaN or infinite weights") }
        return IdentityAdapter(parameters: p, layers: layers.map(\.path), embedDim: e, contextDim: d)
    }

    /// Writes the adapter (diffusers' flat IP-Adapter layout) with `metadata`.
    public func save(to path: String, metadata: [String: String]) throws {
        var m = metadata
        m["troupe"] = "identity-adapter"; m["tokens"] = String(Self.tokenCount); m["embed_dim"] = String(embedDim)
        try SafetensorsWriter.write(parameters, to: path, metadata: m)
    }

    /// Identity vectors [B, embedDim] → context tokens [B, 4, d] (differentiable).
    public func tokens(_ embeddings: Tensor) -> Tensor {
        precondition(embeddings.rank == 2 && embeddings.shape[1] == embedDim, "identity vectors [B, \(embedDim)], got \(embeddings.shape)")
        let b = embeddings.shape[0]
        let flat = embeddings.linear(parameters["image_proj.proj.weight"]!, parameters["image_proj.proj.bias"]!)
        return flat.reshaped([b, Self.tokenCount, contextDim])
            .layerNorm(weight: parameters["image_proj.norm.weight"]!, bias: parameters["image_proj.norm.bias"]!, eps: 1e-5)
    }

    /// The tokens that mean "no identity": those of the zero vector, which diffusers feeds the
    /// unconditional branch (and training drops to, so the adapter learns them).
    public func neutralTokens() -> Tensor { tokens(Tensor(filled: 0, shape: [1, embedDim])) }

    /// The cross-attention extension for one batch: `tokens` [B, 4, d] (one row per batch row)
    /// at scale `scale`.
    public func attention(tokens: Tensor, scale: Float) -> IdentityAttention {
        IdentityAttention(adapter: self, tokens: tokens, scale: scale)
    }

    /// Per-branch identity tokens for sampling: the identity on every prompt branch, the
    /// neutral tokens on the unconditional one (diffusers' negative image embeds are zeros).
    public func conditioning(identity embedding: Tensor, scale: Float) -> IdentityTokens {
        let (t, n) = GradMode.noGrad { (tokens(embedding), neutralTokens()) }
        let byBranch = Dictionary(uniqueKeysWithValues: GuidanceBranch.allCases.map { ($0, $0 == .unconditional ? n : t) })
        return IdentityTokens(adapter: self, branchTokens: byBranch, scale: scale)
    }
}

/// IP-Adapter's decoupled attention term at every cross-attention layer, for one batch.
public struct IdentityAttention: CrossAttentionExtension {
    let adapter: IdentityAdapter
    let tokens: Tensor
    let scale: Float

    public func extra(layer: String, query: Tensor, heads: Int) -> Tensor? {
        guard scale != 0, let i = adapter.layerIndex[layer] else { return nil }
        precondition(query.shape[0] == tokens.shape[0], "identity tokens for \(tokens.shape[0]) rows, a batch of \(query.shape[0])")
        let k = tokens.linear(adapter.parameters[IdentityAdapter.key(layer: i, "to_k_ip")]!, nil)
        let v = tokens.linear(adapter.parameters[IdentityAdapter.key(layer: i, "to_v_ip")]!, nil)
        return Tensor.attention(q: query, k: k, v: v, heads: heads) * scale
    }
}

/// The identity tokens of each guidance branch; the denoise loop batches them like the text.
public struct IdentityTokens: BranchedCrossAttentionExtension {
    public let adapter: IdentityAdapter
    /// [1, 4, d] per branch.
    public let branchTokens: [GuidanceBranch: Tensor]
    public var scale: Float

    public func batched(_ order: [GuidanceBranch], rows: Int) throws -> CrossAttentionExtension {
        let parts = try order.map { b -> Tensor in
            guard let t = branchTokens[b] else { throw GenerationError.badValue("the identity adapter has no tokens for the \(b) branch") }
            return t.expanded([rows, t.shape[1], t.shape[2]]).contiguous()
        }
        return adapter.attention(tokens: parts.count == 1 ? parts[0] : Tensor.concat(parts, dim: 0), scale: scale)
    }
}
