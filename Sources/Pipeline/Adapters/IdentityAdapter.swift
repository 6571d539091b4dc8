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
//
// Optional spatial tokens (the idea of IP-Adapter-Plus, the paper's fine-grained variant: patch
// features rather than one pooled vector), Troupe's own small form: the IdentityEncoder's 8×8 map,
// one token per position, s_j = LayerNorm(W_s·f_j + b_s + p_j) (shared W_s, a learned position
// p_j), read by a second decoupled attention with its own W_k'', W_v'' per layer:
//   Z = Attn(Q, K_text, V_text) + s·Attn(Q, c_i W_k', c_i W_v') + s·Attn(Q, s_j W_k'', s_j W_v'')
// which is how diffusers combines two IP-Adapters on one layer (IPAdapterAttnProcessor2_0 with a
// list of image embeddings). W_v'' starts at zero (ControlNet's zero initialisation), so an
// adapter grown from a pooled-only one starts out as exactly that adapter. Keys:
// "image_proj_spatial.{proj.weight,proj.bias,position,norm.weight,norm.bias}" and
// "ip_adapter_spatial.<k>.to_{k,v}_ip.weight"; a file without them is a plain IP-Adapter.

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
    /// The spatial feature map's channels and positions (0 and 0 without spatial tokens).
    public let spatialChannels: Int
    public let spatialPositions: Int
    /// Whether the adapter reads the encoder's feature map as well as its vector.
    public var isSpatial: Bool { spatialPositions > 0 }
    /// The width of a feature row the adapter reads: the identity vector, then (spatial
    /// adapters) the feature map flattened channel-major — IdentityEncoder.adapterFeatures.
    public var inputWidth: Int { embedDim + spatialChannels * spatialPositions }
    /// Text-context width of the UNet it attaches to.
    public let contextDim: Int
    /// Every trainable tensor by file key.
    public let parameters: [String: Tensor]
    /// Cross-attention layers (module paths "…attn2") in diffusers' attn_processors order.
    public let layers: [String]
    /// Each layer's index in `layers` (its file keys' number).
    let layerIndex: [String: Int]

    init(parameters: [String: Tensor], layers: [String], embedDim: Int, contextDim: Int, spatialChannels: Int = 0, spatialPositions: Int = 0) {
        self.parameters = parameters; self.layers = layers; self.embedDim = embedDim; self.contextDim = contextDim
        self.spatialChannels = spatialChannels; self.spatialPositions = spatialPositions
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
    static func spatialKey(layer index: Int, _ which: String) -> String { "\(spatialLayers)\(2 * index + 1).\(which).weight" }
    static let spatialProjection = "image_proj_spatial.", spatialLayers = "ip_adapter_spatial."
    /// Whether a file key belongs to the spatial branch.
    static func isSpatialKey(_ key: String) -> Bool { key.hasPrefix(spatialProjection) || key.hasPrefix(spatialLayers) }

    /// A new adapter for `unet`: the projection random (small), the norm identity, and each
    /// layer's W_k', W_v' copied from its text W_k, W_v (the IP-Adapter training code's
    /// initialisation, so identity tokens start out read like text tokens). With `spatial`
    /// (channels, positions), the spatial branch too: its projection random, positions small,
    /// W_k'' from the text W_k and W_v'' zero, so it adds nothing until it learns.
    public static func initial(for unet: UNet2DConditionModel, embedDim: Int = IdentityEncoder.dimension,
                               spatial: (channels: Int, positions: Int)? = nil, seed: UInt64) -> IdentityAdapter {
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
        if let spatial {
            let sb = 1 / Float(spatial.channels).squareRoot()
            p[spatialProjection + "proj.weight"] = Tensor.rand([d, spatial.channels], low: -sb, high: sb, using: &r)
            p[spatialProjection + "proj.bias"] = Tensor(filled: 0, shape: [d])
            p[spatialProjection + "position"] = Tensor.randn([spatial.positions, d], using: &r) * 0.02
            p[spatialProjection + "norm.weight"] = Tensor(filled: 1, shape: [d])
            p[spatialProjection + "norm.bias"] = Tensor(filled: 0, shape: [d])
            for (i, l) in layers.enumerated() {
                p[spatialKey(layer: i, "to_k_ip")] = unet.linears[l.path + ".to_k"]!.weight.tensor.clone()
                p[spatialKey(layer: i, "to_v_ip")] = Tensor(filled: 0, shape: [l.inner, d])
            }
        }
        return IdentityAdapter(parameters: p, layers: layers.map(\.path), embedDim: embedDim, contextDim: d,
                               spatialChannels: spatial?.channels ?? 0, spatialPositions: spatial?.positions ?? 0)
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
        var spatial = (channels: 0, positions: 0)
        if let sp = try? f.entry(spatialProjection + "proj.weight"), let pos = try? f.entry(spatialProjection + "position") {
            guard sp.shape.count == 2, sp.shape[0] == d, sp.shape[1] > 0, pos.shape.count == 2, pos.shape[1] == d, pos.shape[0] > 0 else {
                throw IdentityAdapterError.corrupt(path, "its spatial projection is \(sp.shape) with positions \(pos.shape); this model needs [\(d), channels] and [positions, \(d)]: an adapter for another architecture")
            }
            spatial = (sp.shape[1], pos.shape[0])
            try read(spatialProjection + "proj.weight", [d, spatial.channels]); try read(spatialProjection + "proj.bias", [d])
            try read(spatialProjection + "position", [spatial.positions, d])
            try read(spatialProjection + "norm.weight", [d]); try read(spatialProjection + "norm.bias", [d])
            for (i, l) in layers.enumerated() {
                try read(spatialKey(layer: i, "to_k_ip"), [l.inner, d]); try read(spatialKey(layer: i, "to_v_ip"), [l.inner, d])
            }
        }
        let extra = f.entries.keys.filter { p[$0] == nil }.sorted()
        guard extra.isEmpty else {
            throw IdentityAdapterError.corrupt(path, "holds '\(extra[0])', which this model has no layer for (an adapter for another architecture)")
        }
        for t in p.values where !t.isAllFinite { throw IdentityAdapterError.corrupt(path, "holds NaN or infinite weights") }
        return IdentityAdapter(parameters: p, layers: layers.map(\.path), embedDim: e, contextDim: d,
                               spatialChannels: spatial.channels, spatialPositions: spatial.positions)
    }

    /// Writes the adapter (diffusers' flat IP-Adapter layout) with `metadata`.
    public func save(to path: String, metadata: [String: String]) throws {
        var m = metadata
        m["troupe"] = "identity-adapter"; m["tokens"] = String(Self.tokenCount); m["embed_dim"] = String(embedDim)
        if isSpatial { m["spatial_channels"] = String(spatialChannels); m["spatial_positions"] = String(spatialPositions) }
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

    /// Feature rows [B, inputWidth] (IdentityEncoder.adapterFeatures) → every token the adapter
    /// reads: the four pooled ones and, for a spatial adapter, one per map position
    /// [B, positions, d] (differentiable).
    public func tokenSet(_ features: Tensor) -> IdentityTokenSet {
        precondition(features.rank == 2 && features.shape[1] == inputWidth, "identity features [B, \(inputWidth)], got \(features.shape)")
        guard isSpatial else { return IdentityTokenSet(pooled: tokens(features), spatial: nil) }
        let b = features.shape[0]
        let pooled = tokens(features.sliced(1, 0..<embedDim))
        let map = features.sliced(1, embedDim..<inputWidth).reshaped([b, spatialChannels, spatialPositions]).transposed(1, 2)
        let p = Self.spatialProjection
        let spatial = (map.linear(parameters[p + "proj.weight"]!, parameters[p + "proj.bias"]!) + parameters[p + "position"]!)
            .layerNorm(weight: parameters[p + "norm.weight"]!, bias: parameters[p + "norm.bias"]!, eps: 1e-5)
        return IdentityTokenSet(pooled: pooled, spatial: spatial)
    }

    /// The tokens that mean "no identity": those of the zero features, which diffusers feeds
    /// the unconditional branch (and training drops to, so the adapter learns them).
    public func neutralTokens() -> IdentityTokenSet { tokenSet(Tensor(filled: 0, shape: [1, inputWidth])) }

    /// The cross-attention extension for one batch: `tokens` (one row per batch row) at scale
    /// `scale`.
    public func attention(tokens: IdentityTokenSet, scale: Float) -> IdentityAttention {
        IdentityAttention(adapter: self, tokens: tokens, scale: scale)
    }

    /// Per-branch identity tokens for sampling: the identity on every prompt branch, the
    /// neutral tokens on the unconditional one (diffusers' negative image embeds are zeros).
    /// `features`: [1, inputWidth].
    public func conditioning(identity features: Tensor, scale: Float) -> IdentityTokens {
        let (t, n) = GradMode.noGrad { (tokenSet(features), neutralTokens()) }
        let byBranch = Dictionary(uniqueKeysWithValues: GuidanceBranch.allCases.map { ($0, $0 == .unconditional ? n : t) })
        return IdentityTokens(adapter: self, branchTokens: byBranch, scale: scale)
    }
}

/// An adapter's tokens for a batch: the pooled ones [B, 4, d] and the spatial ones
/// [B, positions, d] (nil for a plain IP-Adapter).
public struct IdentityTokenSet {
    public let pooled: Tensor
    public let spatial: Tensor?

    /// The rows of several token sets stacked in order (one per guidance branch).
    static func concat(_ parts: [IdentityTokenSet]) -> IdentityTokenSet {
        guard parts.count > 1 else { return parts[0] }
        let spatial = parts[0].spatial == nil ? nil : Tensor.concat(parts.map { $0.spatial! }, dim: 0)
        return IdentityTokenSet(pooled: Tensor.concat(parts.map(\.pooled), dim: 0), spatial: spatial)
    }

    /// `rows` copies of a one-row set.
    func expanded(rows: Int) -> IdentityTokenSet {
        func grow(_ t: Tensor) -> Tensor { t.expanded([rows, t.shape[1], t.shape[2]]).contiguous() }
        return IdentityTokenSet(pooled: grow(pooled), spatial: spatial.map(grow))
    }
}

/// IP-Adapter's decoupled attention term at every cross-attention layer, for one batch (and the
/// spatial tokens' own term, for a spatial adapter).
public struct IdentityAttention: CrossAttentionExtension {
    let adapter: IdentityAdapter
    let tokens: IdentityTokenSet
    let scale: Float

    public func extra(layer: String, query: Tensor, heads: Int) -> Tensor? {
        guard scale != 0, let i = adapter.layerIndex[layer] else { return nil }
        precondition(query.shape[0] == tokens.pooled.shape[0], "identity tokens for \(tokens.pooled.shape[0]) rows, a batch of \(query.shape[0])")
        func term(_ t: Tensor, _ key: (Int, String) -> String) -> Tensor {
            let k = t.linear(adapter.parameters[key(i, "to_k_ip")]!, nil)
            let v = t.linear(adapter.parameters[key(i, "to_v_ip")]!, nil)
            return Tensor.attention(q: query, k: k, v: v, heads: heads)
        }
        var z = term(tokens.pooled, IdentityAdapter.key)
        if let s = tokens.spatial { z = z + term(s, IdentityAdapter.spatialKey) }
        return z * scale
    }
}

/// The identity tokens of each guidance branch; the denoise loop batches them like the text.
public struct IdentityTokens: BranchedCrossAttentionExtension {
    public let adapter: IdentityAdapter
    /// One row of tokens per branch.
    public let branchTokens: [GuidanceBranch: IdentityTokenSet]
    public var scale: Float

    public func batched(_ order: [GuidanceBranch], rows: Int) throws -> CrossAttentionExtension {
        let parts = try order.map { b -> IdentityTokenSet in
            guard let t = branchTokens[b] else { throw GenerationError.badValue("the identity adapter has no tokens for the \(b) branch") }
            return t.expanded(rows: rows)
        }
        return adapter.attention(tokens: IdentityTokenSet.concat(parts), scale: scale)
    }
}
