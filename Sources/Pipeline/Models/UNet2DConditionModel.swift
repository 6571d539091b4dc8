// UNet2DConditionModel for SD 1.x-family configs, as diffusers'
// models/unets/unet_2d_condition.py with CrossAttnDownBlock2D / DownBlock2D /
// UNetMidBlock2DCrossAttn / CrossAttnUpBlock2D / UpBlock2D (unet_2d_blocks.py):
//   temb = linear_2(silu(linear_1(sinusoid(t))))
//   h = conv_in(x); skips = [h]
//   down block: (resnet → [transformer]) × layers, each output pushed to skips; then a
//               stride-2 conv (not on the last block), also pushed
//   mid: resnet → transformer → resnet            (its output is `mid`, OneActor's feature)
//   up block: (concat(h, skips.pop()) → resnet → [transformer]) × (layers + 1); then nearest
//             2× upsampling + conv (not on the last block)
//   ε = conv_out(silu(conv_norm_out h))

import Foundation

public struct UNetOutput {
    /// The model prediction (ε or v), [B, out, H, W].
    public let sample: Tensor
    /// The mid-block output, [B, C_last, H/2^(n−1), W/2^(n−1)].
    public let mid: Tensor
}

public struct UNet2DConditionModel {
    struct DownBlock { let resnets: [ResnetBlock2D]; let attentions: [Transformer2D]; let downsample: Conv2d? }
    struct UpBlock { let resnets: [ResnetBlock2D]; let attentions: [Transformer2D]; let upsample: Conv2d? }

    public let config: UNetConfig
    /// Every Linear (and Conv2d) layer by module path, for attaching LoRA adapters.
    public let linears: [String: Linear]
    public let convs: [String: Conv2d]
    let timeLinear1: Linear, timeLinear2: Linear
    let convIn: Conv2d
    let down: [DownBlock]
    let midResnets: [ResnetBlock2D], midAttention: Transformer2D
    let up: [UpBlock]
    let normOut: GroupNorm, convOut: Conv2d

    public init(config c: UNetConfig, weights reader: WeightReader, configFile: String = "unet/config.json") throws {
        try c.validate(file: configFile)
        config = c
        let w = reader.scope("")
        let ch = c.blockOutChannels, tdim = c.timeEmbedDim, groups = c.normNumGroups, eps = c.normEps
        let heads = c.headsPerBlock, tlayers = c.transformerLayers, ctx = c.crossAttentionDim
        timeLinear1 = try Linear(w("time_embedding")("linear_1"), in: ch[0], out: tdim)
        timeLinear2 = try Linear(w("time_embedding")("linear_2"), in: tdim, out: tdim)
        convIn = try Conv2d(w("conv_in"), in: c.inChannels, out: ch[0], kernel: 3, padding: 1)

        var downs: [DownBlock] = []
        var outC = ch[0]
        for (i, type) in c.downBlockTypes.enumerated() {
            let inC = outC
            outC = ch[i]
            let bw = w("down_blocks")("\(i)")
            let isFinal = i == ch.count - 1
            let resnets = try (0..<c.layersPerBlock).map { j in
                try ResnetBlock2D(bw("resnets")("\(j)"), in: j == 0 ? inC : outC, out: outC, timeDim: tdim, groups: groups, eps: eps, outputScale: c.resnetOutScaleFactor)
            }
            let attns = type == "CrossAttnDownBlock2D" ? try (0..<c.layersPerBlock).map { j in
                try Transformer2D(bw("attentions")("\(j)"), channels: outC, heads: heads[i], layers: tlayers[i], contextDim: ctx, groups: groups, linearProjection: c.useLinearProjection)
            } : []
            let ds = isFinal ? nil : try Conv2d(bw("downsamplers")("0")("conv"), in: outC, out: outC, kernel: 3, stride: 2, padding: c.downsamplePadding)
            downs.append(DownBlock(resnets: resnets, attentions: attns, downsample: ds))
        }
        down = downs

        let last = ch[ch.count - 1]
        let mw = w("mid_block")
        midResnets = try (0..<2).map { try ResnetBlock2D(mw("resnets")("\($0)"), in: last, out: last, timeDim: tdim, groups: groups, eps: eps, outputScale: c.midBlockScaleFactor) }
        midAttention = try Transformer2D(mw("attentions")("0"), channels: last, heads: heads[heads.count - 1], layers: tlayers[tlayers.count - 1], contextDim: ctx, groups: groups, linearProjection: c.useLinearProjection)

        let rch = Array(ch.reversed()), rheads = Array(heads.reversed()), rlayers = Array(tlayers.reversed())
        var ups: [UpBlock] = []
        var prevOut = rch[0]
        for (i, type) in c.upBlockTypes.enumerated() {
            let outCh = rch[i], inCh = rch[min(i + 1, rch.count - 1)]
            let uw = w("up_blocks")("\(i)")
            let isFinal = i == rch.count - 1
            let n = c.layersPerBlock + 1
            let resnets = try (0..<n).map { j -> ResnetBlock2D in
                let skip = j == n - 1 ? inCh : outCh
                let resIn = j == 0 ? prevOut : outCh
                return try ResnetBlock2D(uw("resnets")("\(j)"), in: resIn + skip, out: outCh, timeDim: tdim, groups: groups, eps: eps, outputScale: c.resnetOutScaleFactor)
            }
            let attns = type == "CrossAttnUpBlock2D" ? try (0..<n).map { j in
                try Transformer2D(uw("attentions")("\(j)"), channels: outCh, heads: rheads[i], layers: rlayers[i], contextDim: ctx, groups: groups, linearProjection: c.useLinearProjection)
            } : []
            let us = isFinal ? nil : try Conv2d(uw("upsamplers")("0")("conv"), in: outCh, out: outCh, kernel: 3, padding: 1)
            ups.append(UpBlock(resnets: resnets, attentions: attns, upsample: us))
            prevOut = outCh
        }
        up = ups
        normOut = try GroupNorm(w("conv_norm_out"), groups: groups, channels: ch[0], eps: eps)
        convOut = try Conv2d(w("conv_out"), in: ch[0], out: c.outChannels, kernel: 3, padding: 1)
        linears = reader.linears
        convs = reader.convs
    }

    /// One denoising evaluation. `timesteps` has one value per batch row (or one for all);
    /// `extension` adds extra tokens to every cross-attention (identity embedding);
    /// `contextMask` (diffusers' encoder_attention_mask) the context tokens each row's
    /// cross-attention skips.
    public func callAsFunction(_ x: Tensor, timesteps: [Float], context: Tensor, contextMask: AttentionKeyMask? = nil,
                               extension ext: CrossAttentionExtension? = nil) -> UNetOutput {
        let b = x.shape[0]
        let ts = timesteps.count == 1 ? Array(repeating: timesteps[0], count: b) : timesteps
        precondition(ts.count == b, "\(ts.count) timesteps for a batch of \(b)")
        precondition(x.shape[2] % (1 << (down.count - 1)) == 0 && x.shape[3] % (1 << (down.count - 1)) == 0,
                     "latent size \(x.shape[2])×\(x.shape[3]) is not divisible by \(1 << (down.count - 1))")
        let sinusoid = timestepEmbedding(ts, dim: config.blockOutChannels[0], flipSinToCos: config.flipSinToCos, shift: Float(config.freqShift))
        let temb = timeLinear2(timeLinear1(sinusoid).silu())

        var h = convIn(config.centerInputSample ? x * 2 - 1 : x)
        var skips = [h]
        for block in down {
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(h, temb)
                if !block.attentions.isEmpty { h = block.attentions[j](h, context: context, contextMask: contextMask, extension: ext) }
                skips.append(h)
            }
            if let ds = block.downsample { h = ds(h); skips.append(h) }
        }
        h = midResnets[0](h, temb)
        h = midAttention(h, context: context, contextMask: contextMask, extension: ext)
        h = midResnets[1](h, temb)
        let mid = h
        for block in up {
            for (j, resnet) in block.resnets.enumerated() {
                h = resnet(Tensor.concat([h, skips.removeLast()], dim: 1), temb)
                if !block.attentions.isEmpty { h = block.attentions[j](h, context: context, contextMask: contextMask, extension: ext) }
            }
            if let us = block.upsample { h = us(h.upsampleNearest2x()) }
        }
        return UNetOutput(sample: convOut(normOut(h).silu()), mid: mid)
    }
}
