// text → image for SD 1.x-architecture models, step for step as diffusers'
// StableDiffusionPipeline.__call__ (pipelines/stable_diffusion/pipeline_stable_diffusion.py):
//   c = CLIP([negative; prompt])                         (unconditional first, one batch)
//   x_T = randn([count, C, H/f, W/f], generator(seed)) · init_noise_sigma
//   for each step: ε_u, ε_c = UNet(scale(x), t, c) on [x; x]
//                  ε = ε_u + s·(ε_c − ε_u)                (a Guidance: classifier-free by default)
//                  x = scheduler.step(ε, x)
//   image = clamp(VAE.decode(x / scaling_factor)/2 + 1/2, 0, 1) · 255, rounded
// img2img (StableDiffusionImg2ImgPipeline): x₀ = scaling_factor · (μ + σ·z₁) from the VAE
// posterior, x = add_noise(x₀, z₂, t_start), and the loop runs from t_start; z₁ then z₂ are
// drawn from the generator in that order.

import Foundation

public final class StableDiffusionPipeline {
    public let tokenizer: CLIPTokenizer
    public let textEncoder: CLIPTextModel
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderKL
    public let schedulerConfig: SchedulerConfig
    public let name: String
    /// Guidance and steps when a request does not set them: the model folder's `troupe.json`,
    /// else SamplingDefaults.standard.
    public let defaults: SamplingDefaults
    /// The model's fingerprint as loaded (OneActor's cluster data and identity adapters name the
    /// model they were made with by it): taken here, before any adapter is merged.
    public let fingerprint: String

    public init(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL,
                schedulerConfig: SchedulerConfig, name: String, defaults: SamplingDefaults = .standard) {
        self.tokenizer = tokenizer; self.textEncoder = textEncoder; self.unet = unet; self.vae = vae
        self.schedulerConfig = schedulerConfig; self.name = name; self.defaults = defaults
        fingerprint = StableDiffusionPipeline.fingerprint(name: name, unet: unet, textEncoder: textEncoder)
    }

    /// A request for `prompt` with this model's defaults.
    public func request(prompt: String) -> GenerationRequest {
        var r = GenerationRequest(prompt: prompt)
        r.guidanceScale = defaults.guidanceScale; r.steps = defaults.steps
        return r
    }

    /// Loads a diffusers folder.
    public convenience init(folder: DiffusersFolder) throws {
        // No scheduler config: SD 1.x's. One that is there is read or refused, never replaced by
        // a default (a v-prediction model sampled as ε-prediction gives garbage, quietly).
        let sc = folder.hasConfig("scheduler", file: "scheduler_config.json")
            ? try folder.config(SchedulerConfig.self, "scheduler", file: "scheduler_config.json") : .stableDiffusion1
        do { _ = try NoiseSchedule(sc) } catch {
            throw WeightsError.badConfig(file: folder.componentPath("scheduler") + "/scheduler_config.json", reason: "\(error)")
        }
        let tokenizer = try folder.tokenizer(), textEncoder = try folder.textEncoder()
        // Every id the tokenizer can produce must index the text encoder's embedding.
        let maxID = max(tokenizer.vocabulary.values.max() ?? 0, tokenizer.bosID, tokenizer.eosID, tokenizer.padID)
        guard maxID < textEncoder.config.vocabSize else {
            throw WeightsError.badConfig(file: folder.path + "/text_encoder/config.json",
                                         reason: "vocab_size \(textEncoder.config.vocabSize) is smaller than the tokenizer's largest id \(maxID)")
        }
        try self.init(tokenizer: tokenizer, textEncoder: textEncoder, unet: folder.unet(), vae: folder.vae(),
                      schedulerConfig: sc, name: (folder.path as NSString).lastPathComponent,
                      defaults: SamplingDefaults.load(folder: folder.path))
    }

    /// The scheduler a request asks for, or the folder's own.
    public func scheduler(for request: GenerationRequest) throws -> (Scheduler, String) {
        let kind: SchedulerKind
        if let k = request.scheduler { kind = k } else {
            guard let k = SchedulerKind.from(className: schedulerConfig.className) else {
                throw SchedulerError.unsupported("the model's scheduler '\(schedulerConfig.className ?? "?")'; pass --scheduler")
            }
            kind = k
        }
        return (try kind.make(schedulerConfig, steps: request.steps), kind.rawValue)
    }

    /// The text conditioning of a request: the negative prompt (`.unconditional`) and the
    /// prompt (`.conditional`), each [count, 77, d]. Adapters mark the positions an offset goes
    /// at (OneActorAdapter: the base word's, per its site).
    public func encodePrompts(_ r: GenerationRequest) throws -> Conditioning {
        let promptIDs = tokenizer.encode(r.prompt)
        let both = textEncoder([tokenizer.encode(r.negativePrompt), promptIDs], clipSkip: r.clipSkip)
        let d = both.shape[2]
        let uncond = both.sliced(0, 0..<1).expanded([r.count, 77, d]).contiguous()
        let cond = both.sliced(0, 1..<2).expanded([r.count, 77, d]).contiguous()
        return Conditioning(branches: [.unconditional: TextConditioning(context: uncond),
                                       .conditional: TextConditioning(context: cond)])
    }

    /// The model's native image side (unet sample_size × VAE factor; 512 for SD 1.x).
    public var nativeSize: Int { (unet.config.sampleSize ?? 64) * vae.config.downsampleFactor }

    /// A request with its size resolved and every field checked.
    public struct Prepared {
        public let request: GenerationRequest
        public let width: Int, height: Int
        /// Latent shape [count, C, h, w].
        public let latentShape: [Int]
    }

    /// The largest image side and pixel count a request may ask for: 8192 and 16 Mpx keep
    /// every derived size (latents, im2col buffers, attention) far from overflow.
    public static let maxSide = 8192, maxPixels = 4096 * 4096

    /// Checks a request against this model; sizes resolved to the native size when absent.
    public func validate(_ request: GenerationRequest) throws -> Prepared {
        var r = request
        r.width = r.width ?? nativeSize
        r.height = r.height ?? nativeSize
        let width = r.width!, height = r.height!
        let f = vae.config.downsampleFactor * (1 << (unet.config.blockOutChannels.count - 1))
        guard width > 0, height > 0, width % f == 0, height % f == 0 else {
            throw GenerationError.badSize(width: width, height: height, multiple: f)
        }
        guard width <= Self.maxSide, height <= Self.maxSide, width * height <= Self.maxPixels else {
            throw GenerationError.badValue("size \(width)×\(height) is too large (at most \(Self.maxSide) a side and \(Self.maxPixels / 1_000_000) Mpx)")
        }
        guard r.steps >= 1, r.steps <= 1000 else { throw GenerationError.badValue("steps must be in 1…1000, got \(r.steps)") }
        guard r.count >= 1, r.count <= 64 else { throw GenerationError.badValue("count must be in 1…64, got \(r.count)") }
        guard r.clipSkip >= 1, r.clipSkip <= textEncoder.config.numHiddenLayers else {
            throw GenerationError.badValue("clip skip must be in 1…\(textEncoder.config.numHiddenLayers), got \(r.clipSkip)")
        }
        guard r.guidanceScale.isFinite, abs(r.guidanceScale) <= 1000 else {
            throw GenerationError.badValue("guidance scale must be a finite number (at most 1000 in size), got \(r.guidanceScale)")
        }
        let lf = vae.config.downsampleFactor
        let shape = [r.count, unet.config.inChannels, height / lf, width / lf]
        if let image = r.initImage {
            guard image.shape == [1, 3, height, width] else {
                throw GenerationError.badValue("init image has shape \(image.shape), this request needs [1, 3, \(height), \(width)]")
            }
            guard image.isAllFinite else { throw GenerationError.badValue("init image holds NaN or infinite values") }
        }
        guard r.strength.isFinite, r.strength >= 0, r.strength <= 1 else { throw GenerationError.badValue("strength must be in 0…1, got \(r.strength)") }
        if let given = r.initLatents {
            guard given.shape == shape else { throw GenerationError.badValue("init latents have shape \(given.shape), this request needs \(shape)") }
            guard given.isAllFinite else { throw GenerationError.badValue("init latents hold NaN or infinite values") }
        }
        return Prepared(request: r, width: width, height: height, latentShape: shape)
    }

    /// The first latents and the index of the first step: noise × init_noise_sigma, or for
    /// img2img the encoded image noised to the start step (posterior sample, then noise, drawn
    /// from the generator in that order).
    public func initialLatents(_ p: Prepared, scheduler: Scheduler, rng: inout TorchGenerator) -> (Tensor, first: Int) {
        let r = p.request
        guard let image = r.initImage else {
            let noise = r.initLatents ?? Tensor.randn(p.latentShape, using: &rng)
            return (noise * scheduler.initNoiseSigma, 0)
        }
        let first = scheduler.startIndex(steps: r.steps, strength: r.strength)
        let (mean, logVar) = vae.encode(image)
        let posterior = AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &rng)
        let x0 = (posterior * vae.config.scalingFactor).expanded(p.latentShape).contiguous()
        let noise = r.initLatents ?? Tensor.randn(p.latentShape, using: &rng)
        return (first < scheduler.timesteps.count ? scheduler.addNoise(x0, noise: noise, index: first) : x0, first)
    }

    /// The sampling loop: per step, the branches the guidance asks for in one UNet batch, the
    /// guidance's combination, the scheduler step. `progress(step, total)` returns false to
    /// cancel; `warn` hears of non-finite latents (named by step) once.
    public func denoise(_ start: Tensor, from first: Int, scheduler: Scheduler, conditioning: Conditioning, guidance: Guidance,
                        rng: inout TorchGenerator, progress: (Int, Int) -> Bool, warn: (String) -> Void = { _ in }) throws -> Tensor {
        var x = start
        let count = x.shape[0]
        let total = scheduler.timesteps.count - first
        var warned = false
        // A guidance asks for one or two branch orders in a run: each context (and key mask) is built once.
        var contexts: [[GuidanceBranch]: Tensor] = [:]
        var masks: [[GuidanceBranch]: AttentionKeyMask?] = [:]
        var extensions: [[GuidanceBranch]: CrossAttentionExtension] = [:]
        for (i, t) in scheduler.timesteps.enumerated() where i >= first {
            if !progress(i - first, total) { throw GenerationError.cancelled }
            let input = scheduler.scaleModelInput(x, index: i)
            let order = guidance.branches(atStep: i - first, of: total)
            let context = try contexts[order] ?? conditioning.context(for: order)
            contexts[order] = context
            let mask = try masks[order] ?? conditioning.contextMask(for: order, rows: count)
            masks[order] = mask
            var ext: CrossAttentionExtension?
            if let branched = conditioning.crossAttentionExtension {
                ext = try extensions[order] ?? branched.batched(order, rows: count)
                extensions[order] = ext
            }
            if let ref = conditioning.referenceAttention, ref.scale > 0 {
                let bank = ref.bank(unet: unet, scheduler: scheduler, index: i, timestep: t, order: order, context: context,
                                    contextMask: try conditioning.contextMask(for: order, rows: 1), rows: count)
                ext = ref.reader(bank: bank, order: order, rows: count, inner: ext)
            }
            let batch = order.count == 1 ? input : Tensor.concat(Array(repeating: input, count: order.count), dim: 0)
            let out = unet(batch, timesteps: [t], context: context, contextMask: mask, extension: ext).sample
            var outputs: [GuidanceBranch: Tensor] = [:]
            for (k, b) in order.enumerated() { outputs[b] = order.count == 1 ? out : out.sliced(0, (k * count)..<((k + 1) * count)) }
            x = scheduler.step(output: guidance.combine(outputs, atStep: i - first, of: total), index: i, sample: x, rng: &rng)
            if !warned, !x.isAllFinite {
                warned = true
                warn("the latents became NaN or infinite at step \(i - first + 1) of \(total) (guidance or model weights out of range?); the images will be blank")
            }
        }
        _ = progress(total, total)
        return x
    }

    /// Runs the request: validate → initial latents → denoise → decode. Without `guidance`,
    /// classifier-free guidance at the request's scale; without `conditioning`, the request's
    /// prompts.
    public func generate(_ request: GenerationRequest, conditioning: Conditioning? = nil, guidance: Guidance? = nil,
                         warn: (String) -> Void = { _ in },
                         progress: (Int, Int) -> Bool = { _, _ in true }) throws -> GenerationResult {
        let p = try validate(request)
        return try GradMode.noGrad {
            let (scheduler, schedulerName) = try scheduler(for: p.request)
            var rng = TorchGenerator(seed: p.request.seed)
            let cond = try conditioning ?? encodePrompts(p.request)
            let (start, first) = initialLatents(p, scheduler: scheduler, rng: &rng)
            let x = try denoise(start, from: first, scheduler: scheduler, conditioning: cond,
                                guidance: guidance ?? ClassifierFreeGuidance(scale: p.request.guidanceScale),
                                rng: &rng, progress: progress, warn: warn)
            return GenerationResult(latents: x, images: decodeToRGB8(x), width: p.width, height: p.height, schedulerName: schedulerName)
        }
    }

    /// Latents → RGB8 HWC buffers, one image at a time, in tiles when larger than the VAE's
    /// training size (bounded memory at any size).
    public func decodeToRGB8(_ latents: Tensor) -> [[UInt8]] {
        (0..<latents.shape[0]).flatMap { i in vae.decodeTiled(latents.sliced(0, i..<(i + 1)) / vae.config.scalingFactor).rgb8Images() }
    }
}

extension Tensor {
    /// Images [B, 3, H, W] in about [−1, 1] → RGB8 HWC buffers, clamped and rounded as
    /// diffusers' numpy_to_pil does (the pixels a user saves).
    public func rgb8Images() -> [[UInt8]] {
        let img = contiguous()
        let (h, w) = (img.shape[2], img.shape[3])
        return (0..<img.shape[0]).map { b in
            let p = img.dataPointer + b * 3 * h * w
            var out = [UInt8](repeating: 0, count: h * w * 3)
            for c in 0..<3 {
                for k in 0..<(h * w) {
                    let x = p[c * h * w + k]
                    let v = x.isNaN ? 0 : Swift.min(Swift.max(x / 2 + 0.5, 0), 1)   // NaN (already warned about) is black
                    out[k * 3 + c] = UInt8((v * 255).rounded(.toNearestOrEven))
                }
            }
            return out
        }
    }
}
