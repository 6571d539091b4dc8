// diffusers UNet2DConditionModel config (unet/config.json): every field that changes the math
// for SD 1.x-family models is decoded; fields this implementation does not support are
// refused by `validate()` with the field named, rather than silently ignored.

import Foundation

/// A config value that diffusers allows as one value or one per block.
public enum PerBlock<T: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    case one(T), list([T])
    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(T.self) { self = .one(v) } else { self = .list(try c.decode([T].self)) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self { case .one(let v): try c.encode(v); case .list(let v): try c.encode(v) }
    }
    public func values(_ n: Int) -> [T] {
        switch self { case .one(let v): return Array(repeating: v, count: n); case .list(let v): return v }
    }
}

public struct UNetConfig: Codable, Sendable, Equatable {
    public var inChannels = 4, outChannels = 4
    public var blockOutChannels = [320, 640, 1280, 1280]
    public var layersPerBlock = 2
    public var downBlockTypes = ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]
    public var upBlockTypes = ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]
    public var midBlockType: String? = "UNetMidBlock2DCrossAttn"
    public var crossAttentionDim = 768
    /// diffusers' historical naming: for SD 1.x this is the number of heads.
    public var attentionHeadDim: PerBlock<Int> = .one(8)
    public var numAttentionHeads: PerBlock<Int>? = nil
    public var transformerLayersPerBlock: PerBlock<Int> = .one(1)
    public var useLinearProjection = false
    public var upcastAttention = false
    public var normNumGroups = 32
    public var normEps: Float = 1e-5
    public var flipSinToCos = true
    public var freqShift = 0
    public var downsamplePadding = 1
    public var midBlockScaleFactor: Float = 1
    public var actFn = "silu"
    public var centerInputSample = false
    public var resnetTimeScaleShift = "default"
    public var resnetOutScaleFactor: Float = 1
    public var timeEmbeddingType = "positional"
    public var classEmbedType: String? = nil
    public var addionEmbedType: String? = nil
    public var onlyCrossAttention: PerBlock<Bool> = .one(false)
    public var dualCrossAttention = false
    public var convInKernel = 3, convOutKernel = 3
    public var timeCondProjDim: Int? = nil
    public var sampleSize: Int? = 64

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels", blockOutChannels = "block_out_channels"
        case layersPerBlock = "layers_per_block", downBlockTypes = "down_block_types", upBlockTypes = "up_block_types"
        case midBlockType = "mid_block_type", crossAttentionDim = "cross_attention_dim", attentionHeadDim = "attention_head_dim"
        case numAttentionHeads = "num_attention_heads", transformerLayersPerBlock = "transformer_layers_per_block"
        case useLinearProjection = "use_linear_projection", upcastAttention = "upcast_attention", normNumGroups = "norm_num_groups"
        case normEps = "norm_eps", flipSinToCos = "flip_sin_to_cos", freqShift = "freq_shift", downsamplePadding = "downsample_padding"
        case midBlockScaleFactor = "mid_block_scale_factor", actFn = "act_fn", centerInputSample = "center_input_sample"
        case resnetTimeScaleShift = "resnet_time_scale_shift", resnetOutScaleFactor = "resnet_out_scale_factor"
        case timeEmbeddingType = "time_embedding_type", classEmbedType = "class_embed_type", addionEmbedType = "addition_embed_type"
        case onlyCrossAttention = "only_cross_attention", dualCrossAttention = "dual_cross_attention"
        case convInKernel = "conv_in_kernel", convOutKernel = "conv_out_kernel", timeCondProjDim = "time_cond_proj_dim"
        case sampleSize = "sample_size"
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = UNetConfig()
        s.inChannels = try c.decode(.inChannels, or: s.inChannels); s.outChannels = try c.decode(.outChannels, or: s.outChannels)
        s.blockOutChannels = try c.decode(.blockOutChannels, or: s.blockOutChannels); s.layersPerBlock = try c.decode(.layersPerBlock, or: s.layersPerBlock)
        s.downBlockTypes = try c.decode(.downBlockTypes, or: s.downBlockTypes); s.upBlockTypes = try c.decode(.upBlockTypes, or: s.upBlockTypes)
        s.midBlockType = try c.decodeIfPresent(String.self, forKey: .midBlockType) ?? (c.contains(.midBlockType) ? nil : s.midBlockType)
        s.crossAttentionDim = try c.decode(.crossAttentionDim, or: s.crossAttentionDim)
        s.attentionHeadDim = try c.decode(.attentionHeadDim, or: s.attentionHeadDim)
        s.numAttentionHeads = try c.decodeIfPresent(PerBlock<Int>.self, forKey: .numAttentionHeads)
        s.transformerLayersPerBlock = try c.decode(.transformerLayersPerBlock, or: s.transformerLayersPerBlock)
        s.useLinearProjection = try c.decode(.useLinearProjection, or: s.useLinearProjection)
        s.upcastAttention = try c.decode(.upcastAttention, or: s.upcastAttention); s.normNumGroups = try c.decode(.normNumGroups, or: s.normNumGroups)
        s.normEps = try c.decode(.normEps, or: s.normEps); s.flipSinToCos = try c.decode(.flipSinToCos, or: s.flipSinToCos)
        s.freqShift = try c.decode(.freqShift, or: s.freqShift); s.downsamplePadding = try c.decode(.downsamplePadding, or: s.downsamplePadding)
        s.midBlockScaleFactor = try c.decode(.midBlockScaleFactor, or: s.midBlockScaleFactor); s.actFn = try c.decode(.actFn, or: s.actFn)
        s.centerInputSample = try c.decode(.centerInputSample, or: s.centerInputSample)
        s.resnetTimeScaleShift = try c.decode(.resnetTimeScaleShift, or: s.resnetTimeScaleShift)
        s.resnetOutScaleFactor = try c.decode(.resnetOutScaleFactor, or: s.resnetOutScaleFactor)
        s.timeEmbeddingType = try c.decode(.timeEmbeddingType, or: s.timeEmbeddingType)
        s.classEmbedType = try c.decodeIfPresent(String.self, forKey: .classEmbedType)
        s.addionEmbedType = try c.decodeIfPresent(String.self, forKey: .addionEmbedType)
        s.onlyCrossAttention = try c.decode(.onlyCrossAttention, or: s.onlyCrossAttention)
        s.dualCrossAttention = try c.decode(.dualCrossAttention, or: s.dualCrossAttention)
        s.convInKernel = try c.decode(.convInKernel, or: s.convInKernel); s.convOutKernel = try c.decode(.convOutKernel, or: s.convOutKernel)
        s.timeCondProjDim = try c.decodeIfPresent(Int.self, forKey: .timeCondProjDim)
        s.sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize)
        self = s
    }

    /// Heads per down block (diffusers: num_attention_heads or, historically, attention_head_dim).
    public var headsPerBlock: [Int] { (numAttentionHeads ?? attentionHeadDim).values(blockOutChannels.count) }
    public var transformerLayers: [Int] { transformerLayersPerBlock.values(blockOutChannels.count) }
    public var timeEmbedDim: Int { blockOutChannels[0] * 4 }

    /// Refuses configs whose math this UNet does not implement.
    public func validate(file: String) throws {
        func no(_ what: String) -> WeightsError { .badConfig(file: file, reason: "\(what) is not supported by this SD 1.x UNet") }
        let okDown: Set = ["CrossAttnDownBlock2D", "DownBlock2D"], okUp: Set = ["CrossAttnUpBlock2D", "UpBlock2D"]
        for t in downBlockTypes where !okDown.contains(t) { throw no("down block type \(t)") }
        for t in upBlockTypes where !okUp.contains(t) { throw no("up block type \(t)") }
        if midBlockType != "UNetMidBlock2DCrossAttn" { throw no("mid_block_type \(midBlockType ?? "null")") }
        if downBlockTypes.count != blockOutChannels.count || upBlockTypes.count != blockOutChannels.count {
            throw WeightsError.badConfig(file: file, reason: "block type lists and block_out_channels differ in length")
        }
        if headsPerBlock.count != blockOutChannels.count || transformerLayers.count != blockOutChannels.count {
            throw WeightsError.badConfig(file: file, reason: "per-block head/layer lists do not match block_out_channels")
        }
        if actFn != "silu" { throw no("act_fn \(actFn)") }
        if resnetTimeScaleShift != "default" { throw no("resnet_time_scale_shift \(resnetTimeScaleShift)") }
        if timeEmbeddingType != "positional" { throw no("time_embedding_type \(timeEmbeddingType)") }
        if classEmbedType != nil { throw no("class_embed_type") }
        if addionEmbedType != nil { throw no("addition_embed_type (SDXL)") }
        if dualCrossAttention { throw no("dual_cross_attention") }
        if onlyCrossAttention.values(blockOutChannels.count).contains(true) { throw no("only_cross_attention") }
        if timeCondProjDim != nil { throw no("time_cond_proj_dim") }
        if convInKernel != 3 || convOutKernel != 3 { throw no("conv kernel sizes other than 3") }
        // Sizes: each a positive number within what any SD 1.x-family model uses, and every
        // division the layers make exact (a group norm's groups, attention heads).
        func bad(_ key: String, _ why: String) -> WeightsError { .badConfig(file: file, reason: "\(key) \(why)") }
        guard !blockOutChannels.isEmpty, blockOutChannels.count <= 8 else { throw bad("block_out_channels", "must list 1…8 blocks") }
        for (k, v) in [("in_channels", inChannels), ("out_channels", outChannels), ("cross_attention_dim", crossAttentionDim)] where !(1...8192).contains(v) {
            throw bad(k, "is \(v); must be in 1…8192")
        }
        guard (1...16).contains(layersPerBlock) else { throw bad("layers_per_block", "is \(layersPerBlock); must be in 1…16") }
        guard (1...1024).contains(normNumGroups) else { throw bad("norm_num_groups", "is \(normNumGroups); must be in 1…1024") }
        guard normEps.isFinite, normEps > 0 else { throw bad("norm_eps", "must be a positive number") }
        guard (0...2).contains(downsamplePadding) else { throw bad("downsample_padding", "is \(downsamplePadding); must be 0, 1 or 2") }
        guard (0...1).contains(freqShift) else { throw bad("freq_shift", "is \(freqShift); must be 0 or 1") }
        guard resnetOutScaleFactor.isFinite, resnetOutScaleFactor > 0 else { throw bad("resnet_out_scale_factor", "must be a positive number") }
        guard midBlockScaleFactor.isFinite, midBlockScaleFactor > 0 else { throw bad("mid_block_scale_factor", "must be a positive number") }
        if let s = sampleSize, !(1...4096).contains(s) { throw bad("sample_size", "is \(s); must be in 1…4096") }
        for (i, c) in blockOutChannels.enumerated() {
            guard (1...8192).contains(c) else { throw bad("block_out_channels[\(i)]", "is \(c); must be in 1…8192") }
            guard c % normNumGroups == 0 else { throw bad("block_out_channels[\(i)]", "= \(c) is not divisible by norm_num_groups \(normNumGroups)") }
            let h = headsPerBlock[i]
            guard h >= 1, h <= c, c % h == 0 else { throw bad("attention heads of block \(i)", "= \(h) must be ≥ 1 and divide its \(c) channels") }
            guard (1...64).contains(transformerLayers[i]) else { throw bad("transformer_layers_per_block[\(i)]", "must be in 1…64") }
        }
        guard blockOutChannels[0] % 2 == 0 else { throw bad("block_out_channels[0]", "must be even (the timestep embedding's sin/cos halves)") }
    }
}
