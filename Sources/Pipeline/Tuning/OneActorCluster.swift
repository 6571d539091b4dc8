// OneActor's cluster data (arXiv 2404.10267 §3.1; design §3): the character's target sample and
// N auxiliary samples of the same prompt with other seeds. For each sample it keeps the clean
// latents z₀ (what the denoising loss trains on) and the UNet's mid-block output h (what the
// projector reads). h is taken the same way for every sample, generated or accepted: z₀ noised
// to `featureTimestep` with fixed noise, through the UNet under the prompt — a generated sample's
// last denoising step sees about that (the public code keeps h from the last step). Saved as
// safetensors with the model's fingerprint, so data made with another model is refused by name.

import Foundation

public struct OneActorCluster {
    /// [N+1, C, h, w], row 0 the target.
    public var latents: Tensor
    /// [N+1, C_mid, s, s], row 0 the target.
    public var features: Tensor
    public var prompt: String
    public var baseWord: String
    public var model: String
    public var featureTimestep: Int

    public var auxiliaryCount: Int { latents.shape[0] - 1 }

    public init(latents: Tensor, features: Tensor, prompt: String, baseWord: String, model: String, featureTimestep: Int) {
        self.latents = latents; self.features = features; self.prompt = prompt; self.baseWord = baseWord
        self.model = model; self.featureTimestep = featureTimestep
    }

    public static let defaultFeatureTimestep = 50

    /// Makes the data: the target from `targetImage` [1, 3, H, W] in [−1, 1] (an accepted image,
    /// encoded by the VAE's mean) or, with none, generated from `request` at its seed; and
    /// `auxiliaries` samples of the same request from the following seeds. `progress(done, total)`
    /// counts generated samples.
    public static func build(pipeline: StableDiffusionPipeline, request: GenerationRequest, baseWord: String, targetImage: Tensor?,
                             auxiliaries: Int, model: String, featureTimestep: Int = defaultFeatureTimestep,
                             progress: (Int, Int) -> Bool = { _, _ in true }) throws -> OneActorCluster {
        guard (1...64).contains(auxiliaries) else { throw GenerationError.badValue("auxiliaries must be in 1…64, got \(auxiliaries)") }
        _ = try pipeline.tokenizer.positions(of: baseWord, in: request.prompt)   // a missing base word is an error before any work
        var r = request
        r.count = 1
        var rows: [Tensor] = []
        let total = auxiliaries + (targetImage == nil ? 1 : 0)
        var done = 0
        if let image = targetImage {
            let p = try pipeline.validate(r)
            guard image.shape == [1, 3, p.height, p.width] else {
                throw GenerationError.badValue("the target image is \(image.shape[3])×\(image.shape[2]); this model draws \(p.width)×\(p.height)")
            }
            rows.append(GradMode.noGrad { pipeline.vae.encode(image).mean * pipeline.vae.config.scalingFactor })
        } else {
            rows.append(try pipeline.generate(r) { _, _ in true }.latents)
            done += 1
            if !progress(done, total) { throw GenerationError.cancelled }
        }
        for k in 1...auxiliaries {
            r.seed = request.seed &+ UInt64(k)
            rows.append(try pipeline.generate(r).latents)
            done += 1
            if !progress(done, total) { throw GenerationError.cancelled }
        }
        let latents = Tensor.concat(rows, dim: 0)
        let features = try midFeatures(pipeline: pipeline, latents: latents, prompt: request.prompt, timestep: featureTimestep)
        return OneActorCluster(latents: latents, features: features, prompt: request.prompt, baseWord: baseWord, model: model,
                               featureTimestep: featureTimestep)
    }

    /// h for each row of `latents`: the UNet's mid-block output at `timestep` under `prompt`.
    public static func midFeatures(pipeline: StableDiffusionPipeline, latents: Tensor, prompt: String, timestep: Int) throws -> Tensor {
        let schedule = try NoiseSchedule(pipeline.schedulerConfig)
        guard (0..<schedule.alphasCumprod.count).contains(timestep) else { throw GenerationError.badValue("feature timestep \(timestep) out of range") }
        return GradMode.noGrad {
            var rng = SplitMixRandom(seed: 0x0A_C7_0A)
            let n = latents.shape[0]
            let noise = Tensor.randn(latents.shape, using: &rng)
            let xt = schedule.addNoise(latents, noise: noise, timesteps: Array(repeating: timestep, count: n))
            let ctx = pipeline.textEncoder([pipeline.tokenizer.encode(prompt)])
            let out = pipeline.unet(xt, timesteps: Array(repeating: Float(timestep), count: n),
                                    context: ctx.expanded([n, ctx.shape[1], ctx.shape[2]]).contiguous())
            return out.mid.contiguous()
        }
    }

    // MARK: files

    public func save(to path: String) throws {
        try SafetensorsWriter.write(["latents": latents, "features": features], to: path,
                                    metadata: ["troupe": "oneactor-cluster", "model": model, "prompt": prompt, "base_word": baseWord,
                                               "feature_timestep": String(featureTimestep)])
    }

    /// Reads cluster data, refusing data made with another model (`model` is the fingerprint of
    /// the one loaded now).
    public static func load(path: String, model: String) throws -> OneActorCluster {
        let f = try SafetensorsFile(path: path)
        guard f.metadata["troupe"] == "oneactor-cluster" else { throw OneActorError.notCluster(path) }
        let made = f.metadata["model"] ?? "?"
        guard made == model else { throw OneActorError.otherModel(path: path, made: made, now: model) }
        let latents = try f.tensor("latents").clone(), features = try f.tensor("features").clone()
        guard latents.rank == 4, features.rank == 4, latents.shape[0] == features.shape[0], latents.shape[0] >= 2 else {
            throw OneActorError.corrupt(path, "latents \(latents.shape) and features \(features.shape) do not pair up")
        }
        guard let t = Int(f.metadata["feature_timestep"] ?? ""), let prompt = f.metadata["prompt"], let base = f.metadata["base_word"] else {
            throw OneActorError.corrupt(path, "metadata lacks prompt, base_word or feature_timestep")
        }
        return OneActorCluster(latents: latents, features: features, prompt: prompt, baseWord: base, model: made, featureTimestep: t)
    }
}

public enum OneActorError: Error, CustomStringConvertible, Equatable {
    case notCluster(String)
    case otherModel(path: String, made: String, now: String)
    case corrupt(String, String)

    public var description: String {
        switch self {
        case .notCluster(let p): return "\(p): not OneActor cluster data"
        case let .otherModel(p, made, now):
            return "\(p) was made with model \(made), not the model loaded now (\(now)); run `troupe tune oneactor` again to remake it"
        case let .corrupt(p, why): return "\(p): \(why)"
        }
    }
}

extension StableDiffusionPipeline {
    /// A short fingerprint of a model's weights and configs: its name plus a hash of the UNet
    /// config and a sample of the UNet's weights, so files made for one model are not used with
    /// another that happens to share the name. Taken once, when the pipeline is made
    /// (`fingerprint`): a stage LoRA merged into the weights for sampling later does not make
    /// the loaded model another one.
    static func fingerprint(name: String, unet: UNet2DConditionModel, textEncoder: CLIPTextModel) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) { for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        mix((try? encoder.encode(unet.config)) ?? Data())
        mix(String(textEncoder.config.hiddenSize).utf8)
        for (path, layer) in unet.linears.sorted(by: { $0.key < $1.key }).prefix(4) {
            mix(path.utf8)
            let v = layer.weight.tensor.toArray()
            for x in v.prefix(256) { withUnsafeBytes(of: x.bitPattern) { mix($0) } }
        }
        return name + "#" + String(h, radix: 16)
    }
}
