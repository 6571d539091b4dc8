// The UNet's building blocks, as diffusers' models/resnet.py, models/attention.py,
// models/transformers/transformer_2d.py, models/embeddings.py:
//   ResnetBlock2D:  h = conv1(silu(norm1 x)) + time_emb_proj(silu temb); h = conv2(silu(norm2 h));
//                   out = (shortcut(x) + h) / output_scale_factor
//   Transformer2D:  x̃ = proj_in(norm x) as tokens; blocks; out = proj_out(x̃) + x
//   BasicTransformerBlock: x += attn1(LN₁x); x += attn2(LN₂x, context); x += ff(LN₃x)
//   FeedForward (GEGLU): ff(x) = W₂ (h ⊙ gelu(g)), [h, g] = W₁x split in halves
// Also used by the VAE: ResnetBlock2D without time embedding and the single-head attention.

public struct ResnetBlock2D {
    let norm1: GroupNorm, conv1: Conv2d, timeProj: Linear?
    let norm2: GroupNorm, conv2: Conv2d, shortcut: Conv2d?
    let outputScale: Float

    init(_ w: WeightScope, in inC: Int, out outC: Int, timeDim: Int?, groups: Int, eps: Float, outputScale: Float = 1) throws {
        norm1 = try GroupNorm(w("norm1"), groups: groups, channels: inC, eps: eps)
        conv1 = try Conv2d(w("conv1"), in: inC, out: outC, kernel: 3, padding: 1)
        timeProj = try timeDim.map { try Linear(w("time_emb_proj"), in: $0, out: outC) }
        norm2 = try GroupNorm(w("norm2"), groups: groups, channels: outC, eps: eps)
        conv2 = try Conv2d(w("conv2"), in: outC, out: outC, kernel: 3, padding: 1)
        shortcut = inC != outC ? try Conv2d(w("conv_shortcut"), in: inC, out: outC, kernel: 1) : nil
        self.outputScale = outputScale
    }

    func callAsFunction(_ x: Tensor, _ temb: Tensor?) -> Tensor {
        var h = conv1(norm1(x).silu())
        if let timeProj, let temb {
            let t = timeProj(temb.silu())
            h = h + t.reshaped([t.shape[0], t.shape[1], 1, 1])
        }
        h = conv2(norm2(h).silu())
        let s = shortcut.map { $0(x) } ?? x
        return outputScale == 1 ? s + h : (s + h) / outputScale
    }
}

/// A hook into every cross-attention layer (IP-Adapter-style decoupled attention: extra
/// tokens with their own key/value projections). Its result is added to the layer's attention
/// output before `to_out`, as diffusers' IPAdapterAttnProcessor does.
/// It is also asked at every self-attention layer ("…attn1") for reference tokens to attend
/// over (ReferenceAttention); the default adds none.
public protocol CrossAttentionExtension {
    /// The term to add at cross-attention layer `layer` (module path, "…attn2") for projected
    /// queries `query` [B, L, C] over `heads` heads; nil adds nothing.
    func extra(layer: String, query: Tensor, heads: Int) -> Tensor?
    /// Extra tokens for self-attention layer `layer`, whose input (the normalised hidden
    /// states) is `hidden` [B, L, C]: keys and values are taken over `tokens` [B, L', C] after
    /// the layer's own, and each row's result is blended back toward plain self-attention by
    /// `plainWeight` [B, 1, 1] (nil: none). Nil: plain self-attention.
    func selfAttentionTokens(layer: String, hidden: Tensor) -> (tokens: Tensor, plainWeight: Tensor?)?
}

extension CrossAttentionExtension {
    public func selfAttentionTokens(layer: String, hidden: Tensor) -> (tokens: Tensor, plainWeight: Tensor?)? { nil }
}

/// diffusers' Attention with the default processor: softmax(q kᵀ / √d) v over `heads` heads.
public struct AttentionBlock {
    let q: Linear, k: Linear, v: Linear, out: Linear
    let heads: Int
    let path: String

    init(_ w: WeightScope, queryDim: Int, contextDim: Int, heads: Int, bias: Bool) throws {
        q = try Linear(w("to_q"), in: queryDim, out: queryDim, bias: bias)
        k = try Linear(w("to_k"), in: contextDim, out: queryDim, bias: bias)
        v = try Linear(w("to_v"), in: contextDim, out: queryDim, bias: bias)
        out = try Linear(w("to_out")("0"), in: queryDim, out: queryDim)
        self.heads = heads
        path = String(w.prefix.dropLast())
    }

    /// `contextMask`: the context tokens each row skips (cross-attention only).
    func callAsFunction(_ x: Tensor, context: Tensor? = nil, contextMask: AttentionKeyMask? = nil, extension ext: CrossAttentionExtension? = nil) -> Tensor {
        let query = q(x)
        var h: Tensor
        if context == nil, let ext, let ref = ext.selfAttentionTokens(layer: path, hidden: x) {
            // diffusers' reference-only attention: the context is [own tokens; reference tokens].
            let joint = Tensor.concat([x, ref.tokens], dim: 1)
            let (kj, vj) = (k(joint), v(joint))
            h = Tensor.attention(q: query, k: kj, v: vj, heads: heads)
            if let w = ref.plainWeight {
                // Plain self-attention reads the own tokens' keys and values: the joint ones' first rows.
                let own = 0..<x.shape[1]
                h = h + (Tensor.attention(q: query, k: kj.sliced(1, own).contiguous(), v: vj.sliced(1, own).contiguous(), heads: heads) - h) * w
            }
        } else {
            let c = context ?? x
            h = Tensor.attention(q: query, k: k(c), v: v(c), heads: heads, keyMask: context == nil ? nil : contextMask)
        }
        if context != nil, let ext, let extra = ext.extra(layer: path, query: query, heads: heads) { h = h + extra }
        return out(h)
    }
}

struct BasicTransformerBlock {
    let norm1: LayerNorm, attn1: AttentionBlock
    let norm2: LayerNorm, attn2: AttentionBlock
    let norm3: LayerNorm, ff1: Linear, ff2: Linear

    init(_ w: WeightScope, dim: Int, contextDim: Int, heads: Int) throws {
        norm1 = try LayerNorm(w("norm1"), dim: dim, eps: 1e-5)
        attn1 = try AttentionBlock(w("attn1"), queryDim: dim, contextDim: dim, heads: heads, bias: false)
        norm2 = try LayerNorm(w("norm2"), dim: dim, eps: 1e-5)
        attn2 = try AttentionBlock(w("attn2"), queryDim: dim, contextDim: contextDim, heads: heads, bias: false)
        norm3 = try LayerNorm(w("norm3"), dim: dim, eps: 1e-5)
        ff1 = try Linear(w("ff")("net")("0")("proj"), in: dim, out: dim * 8)
        ff2 = try Linear(w("ff")("net")("2"), in: dim * 4, out: dim)
    }

    func callAsFunction(_ x: Tensor, context: Tensor, contextMask: AttentionKeyMask?, extension ext: CrossAttentionExtension?) -> Tensor {
        var h = x + attn1(norm1(x), extension: ext)
        h = h + attn2(norm2(h), context: context, contextMask: contextMask, extension: ext)
        let p = ff1(norm3(h))
        let inner = p.shape[p.rank - 1] / 2
        let geglu = p.sliced(-1, 0..<inner) * p.sliced(-1, inner..<(2 * inner)).gelu()
        return h + ff2(geglu)
    }
}

struct Transformer2D {
    let norm: GroupNorm
    let projInConv: Conv2d?, projInLinear: Linear?
    let projOutConv: Conv2d?, projOutLinear: Linear?
    let blocks: [BasicTransformerBlock]

    init(_ w: WeightScope, channels: Int, heads: Int, layers: Int, contextDim: Int, groups: Int, linearProjection: Bool) throws {
        norm = try GroupNorm(w("norm"), groups: groups, channels: channels, eps: 1e-6)
        if linearProjection {
            projInLinear = try Linear(w("proj_in"), in: channels, out: channels); projInConv = nil
            projOutLinear = try Linear(w("proj_out"), in: channels, out: channels); projOutConv = nil
        } else {
            projInConv = try Conv2d(w("proj_in"), in: channels, out: channels, kernel: 1); projInLinear = nil
            projOutConv = try Conv2d(w("proj_out"), in: channels, out: channels, kernel: 1); projOutLinear = nil
        }
        blocks = try (0..<layers).map { try BasicTransformerBlock(w("transformer_blocks")("\($0)"), dim: channels, contextDim: contextDim, heads: heads) }
    }

    func callAsFunction(_ x: Tensor, context: Tensor, contextMask: AttentionKeyMask? = nil, extension ext: CrossAttentionExtension? = nil) -> Tensor {
        let (b, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        func tokens(_ t: Tensor) -> Tensor { t.permuted([0, 2, 3, 1]).reshaped([b, h * wd, c]) }
        func image(_ t: Tensor) -> Tensor { t.reshaped([b, h, wd, c]).permuted([0, 3, 1, 2]) }
        var t = norm(x)
        t = projInConv.map { tokens($0(t)) } ?? projInLinear!(tokens(t))
        for block in blocks { t = block(t, context: context, contextMask: contextMask, extension: ext) }
        let out = projOutConv.map { $0(image(t).contiguous()) } ?? image(projOutLinear!(t))
        return out + x
    }
}

/// Sinusoidal timestep features (diffusers get_timestep_embedding), [B, dim].
func timestepEmbedding(_ timesteps: [Float], dim: Int, flipSinToCos: Bool, shift: Float) -> Tensor {
    let half = dim / 2
    let out = Tensor(zeros: [timesteps.count, dim])
    for (i, t) in timesteps.enumerated() {
        for k in 0..<half {
            let freq = Foundation.exp(-Foundation.log(10000) * Float(k) / (Float(half) - shift))
            let arg = t * freq
            let (s, c) = (Foundation.sin(arg), Foundation.cos(arg))
            out.dataPointer[i * dim + k] = flipSinToCos ? c : s
            out.dataPointer[i * dim + half + k] = flipSinToCos ? s : c
        }
    }
    return out
}

import Foundation
