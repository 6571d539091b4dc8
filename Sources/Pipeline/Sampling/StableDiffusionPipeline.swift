// text → image for SD 1.x-architecture models, step for step as diffusers'
// StableDiffusionPipeline.__call__ (pipelines/stable_diffusion/pipeline_stable_diffusion.py):
//   c = CLIP([negative; prompt])                         (unconditional first, one batch)
//   x_T = randn([count, C, H/f, W/f], generator(seed)) · init_noise_sigma
//   for each step: ε_u, ε_c = UNet(scale(x), t, c) on [x; x]
//                  ε = ε_u + s·(ε_c − ε_u)                (classifier-free guidance, scale s)
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

    public init(tokenizer: CLIPTokenizer, textEncoder: CLIPTextModel, unet: UNet2DConditionModel, vae: AutoencoderKL,
                schedulerConfig: SchedulerConfig, name: String, defaults: SamplingDefaults = .standard) {
        self.tokenizer = tokenizer; self.textEncoder = textEncoder; self.unet = unet; self.vae = vae
        self.schedulerConfig = schedulerConfig; self.name = name; self.defaults = defaults
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
        try self.init(tokenizer: folder.tokenizer(), textEncoder: folder.textEncoder(), unet: folder.unet(), vae: folder.vae(),
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

    /// Text context [2·count, 77, d]: unconditional rows first.
    public func encodePrompts(_ r: GenerationRequest) -> Tensor {
        let ids = [tokenizer.encode(r.negativePrompt), tokenizer.encode(r.prompt)]
        let both = textEncoder(ids, clipSkip: r.clipSkip)
        let uncond = both.sliced(0, 0..<1), cond = both.sliced(0, 1..<2)
        let d = both.shape[2]
        return Tensor.concat([uncond.expanded([r.count, 77, d]), cond.expanded([r.count, 77, d])], dim: 0)
    }

    /// The model's native image side (unet sample_size × VAE factor; 512 for SD 1.x).
    public var nativeSize: Int { (unet.config.sampleSize ?? 64) * vae.config.downsampleFactor }

    /// Runs the request. `progress(step, total)` returns false to cancel (throws `.cancelled`).
    public func generate(_ request: GenerationRequest, progress: (Int, Int) -> Bool = { _, _ in true }) throws -> GenerationResult {
        var r = request
        r.width = r.width ?? nativeSize
        r.height = r.height ?? nativeSize
        let width = r.width!, height = r.height!
        let f = vae.config.downsampleFactor * (1 << (unet.config.blockOutChannels.count - 1))
        guard width > 0, height > 0, width % f == 0, height % f == 0 else {
            throw GenerationError.badSize(width: width, height: height, multiple: f)
        }
        guard r.steps >= 1, r.steps <= 1000 else { throw GenerationError.badValue("steps must be in 1…1000, got \(r.steps)") }
        guard r.count >= 1, r.count <= 64 else { throw GenerationError.badValue("count must be in 1…64, got \(r.count)") }
        guard r.clipSkip >= 1, r.clipSkip <= textEncoder.config.numHiddenLayers else {
            throw GenerationError.badValue("clip skip must be in 1…\(textEncoder.config.numHiddenLayers), got \(r.clipSkip)")
        }
        let lf = vae.config.downsampleFactor
        let shape = [r.count, unet.config.inChannels, height / lf, width / lf]
        if let image = r.initImage, image.shape != [1, 3, height, width] {
            throw GenerationError.badValue("init image has shape \(image.shape), this request needs [1, 3, \(height), \(width)]")
        }
        guard r.strength >= 0, r.strength <= 1 else { throw GenerationError.badValue("strength must be in 0…1, got \(r.strength)") }
        if let given = r.initLatents, given.shape != shape {
            throw GenerationError.badValue("init latents have shape \(given.shape), this request needs \(shape)")
        }
        return try GradMode.noGrad {
            let (scheduler, schedulerName) = try scheduler(for: r)
            var rng = TorchGenerator(seed: r.seed)
            let context = encodePrompts(r)
            var x: Tensor
            var first = 0
            if let image = r.initImage {
                first = scheduler.startIndex(steps: r.steps, strength: r.strength)
                let (mean, logVar) = vae.encode(image)
                let posterior = AutoencoderKL.samplePosterior(mean: mean, logVariance: logVar, using: &rng)
                let x0 = (posterior * vae.config.scalingFactor).expanded(shape).contiguous()
                let noise = r.initLatents ?? Tensor.randn(shape, using: &rng)
                x = first < scheduler.timesteps.count ? scheduler.addNoise(x0, noise: noise, index: first) : x0
            } else {
                let noise = r.initLatents ?? Tensor.randn(shape, using: &rng)
                x = noise * scheduler.initNoiseSigma
            }
            let total = scheduler.timesteps.count - first
            for (i, t) in scheduler.timesteps.enumerated() where i >= first {
                if !progress(i - first, total) { throw GenerationError.cancelled }
                let input = scheduler.scaleModelInput(x, index: i)
                let eps = unet(Tensor.concat([input, input], dim: 0), timesteps: [t], context: context).sample
                let uncond = eps.sliced(0, 0..<r.count), cond = eps.sliced(0, r.count..<(2 * r.count))
                let guided = uncond + (cond - uncond) * r.guidanceScale
                x = scheduler.step(output: guided, index: i, sample: x, rng: &rng)
            }
            _ = progress(total, total)
            let images = decodeToRGB8(x)
            return GenerationResult(latents: x, images: images, width: width, height: height, schedulerName: schedulerName)
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
                    let v = Swift.min(Swift.max(p[c * h * w + k] / 2 + 0.5, 0), 1)
                    out[k * 3 + c] = UInt8((v * 255).rounded(.toNearestOrEven))
                }
            }
            return out
        }
    }
}
