// AutoencoderKL (the SD VAE), as diffusers' models/autoencoders/autoencoder_kl.py and vae.py:
//   encode: moments = quant_conv(Encoder(x)); mean, logvar = split(moments)
//   decode: x = Decoder(post_quant_conv(z))
// Encoder: conv_in → DownEncoderBlock2D × n (resnets, then F.pad(0,1,0,1) + stride-2 conv,
// except the last) → mid (resnet, single-head attention, resnet) → norm, silu, conv_out.
// Decoder mirrors it with UpDecoderBlock2D (layers + 1 resnets, nearest 2× + conv).
// Resnets and attention use eps 1e-6. Latents given to the UNet are mean · scaling_factor.

import Foundation

public struct VAEConfig: Codable, Sendable, Equatable {
    public var inChannels = 3, outChannels = 3, latentChannels = 4
    public var blockOutChannels = [128, 256, 512, 512]
    public var layersPerBlock = 2
    public var normNumGroups = 32
    public var scalingFactor: Float = 0.18215
    public var useQuantConv = true, usePostQuantConv = true
    public var midBlockAddAttention = true
    /// Training image size; sets the tile size of tiled decoding.
    public var sampleSize = 512

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", latentChannels = "latent_channels"
        case blockOutChannels = "block_out_channels", layersPerBlock = "layers_per_block", normNumGroups = "norm_num_groups"
        case scalingFactor = "scaling_factor", useQuantConv = "use_quant_conv", usePostQuantConv = "use_post_quant_conv"
        case midBlockAddAttention = "mid_block_add_attention", sampleSize = "sample_size"
    }

    public init() {}

    /// Sizes within what SD VAEs use, every block divisible into its group-norm groups.
    public func validate(file: String) throws {
        func bad(_ key: String, _ why: String) -> WeightsError { .badConfig(file: file, reason: "\(key) \(why)") }
        guard !blockOutChannels.isEmpty, blockOutChannels.count <= 8 else { throw bad("block_out_channels", "must list 1…8 blocks") }
        for (k, v) in [("in_channels", inChannels), ("out_channels", outChannels), ("latent_channels", latentChannels)] where !(1...64).contains(v) {
            throw bad(k, "is \(v); must be in 1…64")
        }
        guard (1...16).contains(layersPerBlock) else { throw bad("layers_per_block", "is \(layersPerBlock); must be in 1…16") }
        guard (1...1024).contains(normNumGroups) else { throw bad("norm_num_groups", "is \(normNumGroups); must be in 1…1024") }
        for (i, c) in blockOutChannels.enumerated() {
            guard (1...8192).contains(c), c % normNumGroups == 0 else {
                throw bad("block_out_channels[\(i)]", "= \(c) must be in 1…8192 and divisible by norm_num_groups \(normNumGroups)")
            }
        }
        guard scalingFactor.isFinite, scalingFactor > 0 else { throw bad("scaling_factor", "must be a positive number") }
        guard (8...8192).contains(sampleSize) else { throw bad("sample_size", "is \(sampleSize); must be in 8…8192") }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = VAEConfig()
        s.inChannels = try c.decode(.inChannels, or: s.inChannels); s.outChannels = try c.decode(.outChannels, or: s.outChannels)
        s.latentChannels = try c.decode(.latentChannels, or: s.latentChannels); s.blockOutChannels = try c.decode(.blockOutChannels, or: s.blockOutChannels)
        s.layersPerBlock = try c.decode(.layersPerBlock, or: s.layersPerBlock); s.normNumGroups = try c.decode(.normNumGroups, or: s.normNumGroups)
        s.scalingFactor = try c.decode(.scalingFactor, or: s.scalingFactor); s.useQuantConv = try c.decode(.useQuantConv, or: s.useQuantConv)
        s.usePostQuantConv = try c.decode(.usePostQuantConv, or: s.usePostQuantConv)
        s.midBlockAddAttention = try c.decode(.midBlockAddAttention, or: s.midBlockAddAttention)
        s.sampleSize = try c.decode(.sampleSize, or: s.sampleSize)
        self = s
    }

    /// Pixels per latent along each side.
    public var downsampleFactor: Int { 1 << (blockOutChannels.count - 1) }
}

/// The VAE mid-block's attention: group norm, one head over all channels, residual.
struct SpatialSelfAttention {
    let norm: GroupNorm, attention: AttentionBlock

    init(_ w: WeightScope, channels: Int, groups: Int) throws {
        norm = try GroupNorm(w("group_norm"), groups: groups, channels: channels, eps: 1e-6)
        attention = try AttentionBlock(w, queryDim: channels, contextDim: channels, heads: 1, bias: true)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let (b, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let t = norm(x).permuted([0, 2, 3, 1]).reshaped([b, h * wd, c])
        return attention(t).reshaped([b, h, wd, c]).permuted([0, 3, 1, 2]) + x
    }
}

struct VAEMidBlock {
    let resnet1: ResnetBlock2D, attention: SpatialSelfAttention?, resnet2: ResnetBlock2D

    init(_ w: WeightScope, channels: Int, groups: Int, attention hasAttention: Bool) throws {
        resnet1 = try ResnetBlock2D(w("resnets")("0"), in: channels, out: channels, timeDim: nil, groups: groups, eps: 1e-6)
        attention = hasAttention ? try SpatialSelfAttention(w("attentions")("0"), channels: channels, groups: groups) : nil
        resnet2 = try ResnetBlock2D(w("resnets")("1"), in: channels, out: channels, timeDim: nil, groups: groups, eps: 1e-6)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = resnet1(x, nil)
        if let attention { h = attention(h) }
        return resnet2(h, nil)
    }
}

public struct AutoencoderKL {
    struct Level { let resnets: [ResnetBlock2D]; let resample: Conv2d? }

    public let config: VAEConfig
    let encConvIn: Conv2d, encLevels: [Level], encMid: VAEMidBlock, encNorm: GroupNorm, encConvOut: Conv2d
    let quantConv: Conv2d?, postQuantConv: Conv2d?
    let decConvIn: Conv2d, decMid: VAEMidBlock, decLevels: [Level], decNorm: GroupNorm, decConvOut: Conv2d

    public init(config c: VAEConfig, weights reader: WeightReader, configFile: String = "vae/config.json") throws {
        try c.validate(file: configFile)
        config = c
        let w = reader.scope(""), ch = c.blockOutChannels, g = c.normNumGroups, lat = c.latentChannels
        let e = w("encoder"), d = w("decoder")
        encConvIn = try Conv2d(e("conv_in"), in: c.inChannels, out: ch[0], kernel: 3, padding: 1)
        var levels: [Level] = []
        var outC = ch[0]
        for i in 0..<ch.count {
            let inC = outC; outC = ch[i]
            let bw = e("down_blocks")("\(i)")
            let resnets = try (0..<c.layersPerBlock).map { j in
                try ResnetBlock2D(bw("resnets")("\(j)"), in: j == 0 ? inC : outC, out: outC, timeDim: nil, groups: g, eps: 1e-6)
            }
            let ds = i == ch.count - 1 ? nil : try Conv2d(bw("downsamplers")("0")("conv"), in: outC, out: outC, kernel: 3, stride: 2, padding: 0)
            levels.append(Level(resnets: resnets, resample: ds))
        }
        encLevels = levels
        let last = ch[ch.count - 1]
        encMid = try VAEMidBlock(e("mid_block"), channels: last, groups: g, attention: c.midBlockAddAttention)
        encNorm = try GroupNorm(e("conv_norm_out"), groups: g, channels: last, eps: 1e-6)
        encConvOut = try Conv2d(e("conv_out"), in: last, out: 2 * lat, kernel: 3, padding: 1)
        quantConv = c.useQuantConv ? try Conv2d(w("quant_conv"), in: 2 * lat, out: 2 * lat, kernel: 1) : nil
        postQuantConv = c.usePostQuantConv ? try Conv2d(w("post_quant_conv"), in: lat, out: lat, kernel: 1) : nil

        decConvIn = try Conv2d(d("conv_in"), in: lat, out: last, kernel: 3, padding: 1)
        decMid = try VAEMidBlock(d("mid_block"), channels: last, groups: g, attention: c.midBlockAddAttention)
        let rch = Array(ch.reversed())
        var prev = rch[0]
        levels = []
        for i in 0..<rch.count {
            let outCh = rch[i]
            let bw = d("up_blocks")("\(i)")
            let resnets = try (0...c.layersPerBlock).map { j in
                try ResnetBlock2D(bw("resnets")("\(j)"), in: j == 0 ? prev : outCh, out: outCh, timeDim: nil, groups: g, eps: 1e-6)
            }
            let us = i == rch.count - 1 ? nil : try Conv2d(bw("upsamplers")("0")("conv"), in: outCh, out: outCh, kernel: 3, padding: 1)
            levels.append(Level(resnets: resnets, resample: us))
            prev = outCh
        }
        decLevels = levels
        decNorm = try GroupNorm(d("conv_norm_out"), groups: g, channels: ch[0], eps: 1e-6)
        decConvOut = try Conv2d(d("conv_out"), in: ch[0], out: c.outChannels, kernel: 3, padding: 1)
    }

    /// Posterior mean and log-variance of images in [-1, 1], [B, 3, H, W] → 2 × [B, L, H/f, W/f].
    public func encode(_ x: Tensor) -> (mean: Tensor, logVariance: Tensor) {
        var h = encConvIn(x)
        for level in encLevels {
            for r in level.resnets { h = r(h, nil) }
            if let ds = level.resample { h = ds(h.zeroPadded2D(right: 1, bottom: 1)) }
        }
        h = encConvOut(encNorm(encMid(h)).silu())
        if let quantConv { h = quantConv(h) }
        let l = config.latentChannels
        return (h.sliced(1, 0..<l).contiguous(), h.sliced(1, l..<(2 * l)).contiguous())
    }

    /// σ of the posterior N(μ, σ²) from `encode`'s log-variance (clamped to [−30, 20] as
    /// diffusers' DiagonalGaussianDistribution does).
    public static func posteriorStd(_ logVariance: Tensor) -> Tensor { (logVariance.clamped(-30, 20) * 0.5).exp() }

    /// A sample μ + σ·z of the posterior, z drawn from `rng` (latent_dist.sample()).
    public static func samplePosterior<R: RandomSource>(mean: Tensor, logVariance: Tensor, using rng: inout R) -> Tensor {
        mean + posteriorStd(logVariance) * Tensor.randn(mean.shape, using: &rng)
    }

    /// Images in about [-1, 1] from (unscaled) latents.
    public func decode(_ z: Tensor) -> Tensor {
        var h = decConvIn(postQuantConv.map { $0(z) } ?? z)
        h = decMid(h)
        for level in decLevels {
            for r in level.resnets { h = r(h, nil) }
            if let us = level.resample { h = us(h.upsampleNearest2x()) }
        }
        return decConvOut(decNorm(h).silu())
    }
}

extension AutoencoderKL {
    /// Latent tile side for tiled decoding (diffusers: sample_size / 2^(levels−1); 64 for SD).
    public var tileLatentSize: Int { config.sampleSize / config.downsampleFactor }

    /// Decodes in overlapping tiles of `tile` latents (25% overlap, linear blending across the
    /// seams), as diffusers' AutoencoderKL.tiled_decode with enable_tiling(): memory is bounded
    /// by one tile whatever the image size. Latents no larger than a tile decode whole.
    public func decodeTiled(_ z: Tensor, tile: Int? = nil) -> Tensor {
        let t = tile ?? tileLatentSize
        guard z.shape[2] > t || z.shape[3] > t else { return decode(z) }
        let f = config.downsampleFactor
        let sampleTile = t * f
        let step = Int(Float(t) * 0.75)
        let blend = Int(Float(sampleTile) * 0.25)
        let limit = sampleTile - blend
        var rows: [[Tensor]] = []
        for i in stride(from: 0, to: z.shape[2], by: step) {
            var row: [Tensor] = []
            for j in stride(from: 0, to: z.shape[3], by: step) {
                let piece = z.sliced(2, i..<Swift.min(i + t, z.shape[2])).sliced(3, j..<Swift.min(j + t, z.shape[3])).contiguous()
                row.append(decode(piece).contiguous())
            }
            rows.append(row)
        }
        // Blend in place, in diffusers' order: each tile takes the already blended tiles above
        // and to its left.
        var resultRows: [Tensor] = []
        for i in rows.indices {
            var pieces: [Tensor] = []
            for j in rows[i].indices {
                let cur = rows[i][j]
                if i > 0 { AutoencoderKL.blend(rows[i - 1][j], into: cur, extent: blend, axis: 2) }
                if j > 0 { AutoencoderKL.blend(rows[i][j - 1], into: cur, extent: blend, axis: 3) }
                pieces.append(cur.sliced(2, 0..<Swift.min(limit, cur.shape[2])).sliced(3, 0..<Swift.min(limit, cur.shape[3])))
            }
            resultRows.append(Tensor.concat(pieces, dim: 3))
        }
        return Tensor.concat(resultRows, dim: 2)
    }

    /// b[..., k, ...] = a[..., −e + k, ...]·(1 − k/e) + b[..., k, ...]·(k/e) for k < e along `axis`.
    static func blend(_ a: Tensor, into b: Tensor, extent: Int, axis: Int) {
        let e = Swift.min(a.shape[axis], b.shape[axis], extent)
        for k in 0..<e {
            let w = Float(k) / Float(e)
            let src = a.sliced(axis, (a.shape[axis] - e + k)..<(a.shape[axis] - e + k + 1))
            let dst = b.sliced(axis, k..<(k + 1))
            dst.assign(src * (1 - w) + dst * w)
        }
    }
}
