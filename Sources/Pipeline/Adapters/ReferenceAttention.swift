// Reference-only attention: the character's reference image steers every self-attention layer,
// with no tuning (diffusers examples/community/stable_diffusion_reference.py, `reference_attn`;
// from Mikubill/sd-webui-controlnet's "reference_only"). Each denoising step:
//   1. the reference's clean latents are noised to the step (scheduler.add_noise, fresh noise)
//      and go through the UNet once per guidance branch, under that branch's context; every
//      self-attention layer records its input (the block's norm1 output) — the "bank";
//   2. the generation's self-attention layers attend over [own tokens; the reference's tokens]
//      of the same branch, so appearance flows from the reference where the queries match it.
// diffusers' `style_fidelity` keeps the unconditional branch partly plain:
//   uncond rows: sf·attn(own) + (1 − sf)·attn(own ∪ ref);  other rows: attn(own ∪ ref),
// so guidance pushes toward the reference. `scale` blends every row toward plain attention
// (scale 1 is diffusers' method; 0 is off): row weight of attn(own) = 1 − scale·(1 − sf) on the
// unconditional rows and 1 − scale on the others.

import Foundation

public struct ReferenceAttention {
    /// The reference's clean latents [1, C, h, w], already scaled (scaling_factor · VAE mean).
    public let latents: Tensor
    public let scale: Float
    public let styleFidelity: Float
    /// Seeds the reference's per-step noise (its own stream: the generation's is untouched).
    public let seed: UInt64

    public init(latents: Tensor, scale: Float, styleFidelity: Float = ReferenceAttention.defaultStyleFidelity, seed: UInt64) throws {
        guard latents.rank == 4, latents.shape[0] == 1 else { throw GenerationError.badValue("the reference's latents must be one image [1, C, h, w], got \(latents.shape)") }
        guard scale.isFinite, (0...1).contains(scale) else { throw GenerationError.badValue("the reference attention's scale must be in 0…1, got \(scale)") }
        guard styleFidelity.isFinite, (0...1).contains(styleFidelity) else { throw GenerationError.badValue("the reference attention's style fidelity must be in 0…1, got \(styleFidelity)") }
        self.latents = latents; self.scale = scale; self.styleFidelity = styleFidelity; self.seed = seed
    }

    /// diffusers' default `style_fidelity`.
    public static let defaultStyleFidelity: Float = 0.5

    /// The reference image [1, 3, H, W] in [−1, 1] encoded as the generation's latents are
    /// (the posterior mean, as diffusers' prepare_ref_latents takes `latent_dist.sample` —
    /// the mean keeps it deterministic).
    public static func latents(of image: Tensor, vae: AutoencoderKL) -> Tensor {
        GradMode.noGrad { vae.encode(image).mean * vae.config.scalingFactor }
    }

    /// Step `index`'s bank: the reference noised to the step, through `unet` once per branch of
    /// `order` (one row each, under that branch's first context row), each self-attention
    /// layer's input recorded. `context` holds `rows` rows per branch, in `order`.
    func bank(unet: UNet2DConditionModel, scheduler: Scheduler, index: Int, timestep: Float, order: [GuidanceBranch],
              context: Tensor, contextMask: AttentionKeyMask? = nil, rows: Int) -> [String: Tensor] {
        var rng = SplitMixRandom(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        let noisy = scheduler.scaleModelInput(scheduler.addNoise(latents, noise: Tensor.randn(latents.shape, using: &rng), index: index), index: index)
        let k = order.count
        let input = k == 1 ? noisy : Tensor.concat(Array(repeating: noisy, count: k), dim: 0)
        let branchContext = k == 1 && rows == 1 ? context : Tensor.concat((0..<k).map { context.sliced(0, (($0 * rows))..<($0 * rows + 1)) }, dim: 0)
        let recorder = ReferenceRecorder()
        _ = unet(input, timesteps: [timestep], context: branchContext, contextMask: contextMask, extension: recorder)
        return recorder.bank
    }

    /// The extension for the generation's batch: `order`'s branches, `rows` rows each, reading
    /// `bank`; `inner` (identity tokens) still answers the cross-attention layers.
    func reader(bank: [String: Tensor], order: [GuidanceBranch], rows: Int, inner: CrossAttentionExtension?) -> CrossAttentionExtension {
        let weights = order.flatMap { b -> [Float] in
            let w = b == .unconditional ? 1 - scale * (1 - styleFidelity) : 1 - scale
            return Array(repeating: w, count: rows)
        }
        return ReferenceReader(bank: bank, branches: order.count, rows: rows,
                               plainWeight: weights.allSatisfy { $0 == 0 } ? nil : Tensor(weights, shape: [weights.count, 1, 1]), inner: inner)
    }
}

/// The reference pass: records each self-attention layer's input, attends as usual.
final class ReferenceRecorder: CrossAttentionExtension {
    var bank: [String: Tensor] = [:]
    func extra(layer: String, query: Tensor, heads: Int) -> Tensor? { nil }
    func selfAttentionTokens(layer: String, hidden: Tensor) -> (tokens: Tensor, plainWeight: Tensor?)? {
        bank[layer] = hidden.detached()
        return nil
    }
}

/// The generation's pass: each branch's rows attend over that branch's reference tokens.
struct ReferenceReader: CrossAttentionExtension {
    let bank: [String: Tensor]
    let branches: Int, rows: Int
    let plainWeight: Tensor?
    let inner: CrossAttentionExtension?

    func extra(layer: String, query: Tensor, heads: Int) -> Tensor? { inner?.extra(layer: layer, query: query, heads: heads) }

    func selfAttentionTokens(layer: String, hidden: Tensor) -> (tokens: Tensor, plainWeight: Tensor?)? {
        guard let ref = bank[layer] else { return nil }
        // [branches, L, C] → [branches·rows, L, C]: each branch's token row repeated for its images.
        let tokens = rows == 1 ? ref : Tensor.concat((0..<branches).map { b in
            ref.sliced(0, b..<(b + 1)).expanded([rows, ref.shape[1], ref.shape[2]]).contiguous()
        }, dim: 0)
        return (tokens, plainWeight)
    }
}
