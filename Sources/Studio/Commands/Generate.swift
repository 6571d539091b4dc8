// `troupe generate`: prompt → PNG(s) with an A1111 `parameters` chunk (design §7).
// Progress goes to stderr; Ctrl-C stops at the next step boundary; --json prints one object.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generate images from a prompt.")

    @Option(help: "Diffusers model folder or single-file .safetensors checkpoint (default: the embedded troupe-mini).")
    var model: String?
    @Option(help: "The prompt.")
    var prompt: String?
    @Option(help: "The negative prompt.")
    var negative: String?
    @Option(help: "Seed of the torch-compatible noise generator (same seed, same image as diffusers).")
    var seed: UInt64?
    @Option(help: "Sampling steps (default: the model's troupe.json, else 25).")
    var steps: Int?
    @Option(help: "Classifier-free guidance scale (default: the model's troupe.json, else 7.5).")
    var cfg: Float?
    @Option(help: "ddim, pndm, euler, euler-a, dpmpp-2m, dpmpp-2m-karras or ddpm (default: the model's own).")
    var scheduler: String?
    @Option(help: "Image width in pixels.")
    var width: Int?
    @Option(help: "Image height in pixels.")
    var height: Int?
    @Option(help: "Number of images (one batch, consecutive noise from one seed).")
    var count: Int?
    @Option(name: .customLong("clip-skip"), help: "A1111 clip skip (1 = last layer).")
    var clipSkip: Int?
    @Option(name: .customLong("init-latents"), help: "safetensors file with a tensor `latents` [N,C,h,w] of unscaled noise.")
    var initLatents: String?
    @Option(name: .customLong("output-latents"), help: "Write the final latents (before VAE decode) as `latents` to this safetensors file.")
    var outputLatents: String?
    @Option(name: .customLong("lora"), help: "LoRA file (kohya or PEFT layout) with an optional multiplier, FILE[:SCALE]; repeatable.")
    var loras: [String] = []
    @Option(name: .customLong("init-image"), help: "img2img: start from this PNG (its size must be a multiple of the model's factor).")
    var initImage: String?
    @Option(help: "img2img: how much of the init image to redraw, 0…1.")
    var strength: Float = 0.75
    @Option(name: .customLong("from-png"), help: "Start from the settings stored in a PNG's parameters chunk (flags override them).")
    var fromPNG: String?
    @Option(name: .shortAndLong, help: "Output PNG path (with --count N: OUT.png, OUT-2.png, …).")
    var output: String?
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    /// The request the flags (over the PNG's settings) describe, and which image of the
    /// batch to keep (a PNG from a batch is re-created by re-running its whole batch).
    func request(defaults: SamplingDefaults = .standard) throws -> (GenerationRequest, keep: Int?) {
        var base = GenerationParameters(prompt: "")
        if let fromPNG {
            let text: [(String, String)]
            do { text = try PNGCodec.readText(path: fromPNG) } catch { throw StudioError.wrap(error) }
            guard let p = text.first(where: { $0.0 == GenerationParameters.chunkKey }) else {
                throw StudioError.badInput("\(fromPNG): no `parameters` text chunk to re-create the generation from")
            }
            base = GenerationParameters(text: p.1)
        }
        guard let text = prompt ?? (fromPNG != nil ? base.prompt : nil) else {
            throw StudioError.badInput("--prompt is required (or --from-png FILE)")
        }
        var r = GenerationRequest(prompt: text)
        r.negativePrompt = negative ?? base.negativePrompt
        r.seed = seed ?? base.seed ?? 0
        r.steps = steps ?? base.steps ?? defaults.steps
        r.guidanceScale = cfg ?? base.cfgScale.map(Float.init) ?? defaults.guidanceScale
        let schedulerName = scheduler ?? base.sampler.flatMap(SamplerNames.kind(a1111:))?.rawValue
        if let s = schedulerName {
            guard let k = SchedulerKind(rawValue: s) else {
                throw StudioError.badInput("unknown scheduler '\(s)'; choose one of \(SchedulerKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            r.scheduler = k
        }
        r.width = width ?? base.width
        r.height = height ?? base.height
        var keep: Int? = nil
        if count == nil, let size = base.extra.first(where: { $0.0 == "Batch size" }).flatMap({ Int($0.1) }),
           let index = base.extra.first(where: { $0.0 == "Batch index" }).flatMap({ Int($0.1) }), size > 1, index < size {
            r.count = size
            keep = index
        } else {
            r.count = count ?? 1
        }
        r.clipSkip = clipSkip ?? base.clipSkip ?? 1
        if let initImage {
            let img: RGBImage
            do { img = try PNGCodec.read(path: initImage) } catch { throw StudioError.wrap(error) }
            r.initImage = ImageTensors.tensor(from: img)
            r.strength = strength
            r.width = width ?? img.width
            r.height = height ?? img.height
        }
        if let initLatents {
            do { r.initLatents = try SafetensorsFile(path: initLatents).tensor("latents").clone() } catch { throw StudioError.wrap(error) }
            r.count = r.initLatents!.shape[0]
            keep = nil
        }
        return (r, keep)
    }

    static let loraField = "Troupe LoRA"

    /// --lora FILE[:SCALE] values (or, with --from-png and no --lora, the PNG's own).
    func loraSpecifications() throws -> [(String, Float)] {
        var specs = loras
        if specs.isEmpty, let fromPNG, let text = try? PNGCodec.readText(path: fromPNG),
           let p = text.first(where: { $0.0 == GenerationParameters.chunkKey }),
           let field = GenerationParameters(text: p.1).extra.first(where: { $0.0 == Generate.loraField }) {
            specs = field.1.split(separator: "|").map(String.init)
        }
        return try specs.map { spec in
            if let colon = spec.lastIndex(of: ":"), let scale = Float(spec[spec.index(after: colon)...]) {
                return (String(spec[..<colon]), scale)
            }
            guard !spec.isEmpty else { throw StudioError.badInput("--lora needs FILE[:SCALE]") }
            return (spec, 1)
        }
    }

    func outputPaths(_ n: Int, seed: UInt64) -> [String] {
        let base = output ?? "troupe-\(seed).png"
        if n == 1 { return [base] }
        let ext = (base as NSString).pathExtension, stem = (base as NSString).deletingPathExtension
        return (0..<n).map { $0 == 0 ? base : "\(stem)-\($0 + 1).\(ext.isEmpty ? "png" : ext)" }
    }

    func run() throws {
        _ = try request()   // bad flags are refused before the model loads
        let (pipeline, modelName) = try ModelLocator.loadPipeline(model)
        let (req, keep) = try request(defaults: pipeline.defaults)
        let loraSpecs = try loraSpecifications()
        for (path, scale) in loraSpecs {
            do { try LoRAFile(path: path).apply(multiplier: scale, unet: pipeline.unet, textEncoder: pipeline.textEncoder) } catch {
                throw StudioError.wrap(error)
            }
        }
        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "generate", quiet: false)
        let start = Date()
        let result: GenerationResult
        do {
            result = try pipeline.generate(req) { step, total in
                progress.update(step: step, total: total)
                return !interrupt.isSet
            }
        } catch { progress.finish(); throw StudioError.wrap(error) }
        progress.finish()
        let kept = keep.map { [$0] } ?? Array(result.images.indices)
        let paths = outputPaths(kept.count, seed: req.seed)
        do {
            for (n, i) in kept.enumerated() {
                let pixels = result.images[i]
                var p = GenerationParameters(prompt: req.prompt)
                p.negativePrompt = req.negativePrompt; p.steps = req.steps; p.sampler = SamplerNames.a1111(result.schedulerName)
                p.cfgScale = Double(req.guidanceScale); p.seed = req.seed; p.width = result.width; p.height = result.height
                p.model = modelName; p.clipSkip = req.clipSkip
                if result.images.count > 1 { p.extra.append(("Batch index", String(i))); p.extra.append(("Batch size", String(result.images.count))) }
                if !loraSpecs.isEmpty { p.extra.append((Generate.loraField, loraSpecs.map { "\($0.0):\($0.1)" }.joined(separator: "|"))) }
                try PNGCodec.write(RGBImage(width: result.width, height: result.height, pixels: pixels), to: paths[n],
                                   text: [(GenerationParameters.chunkKey, p.text)])
            }
            if let outputLatents {
                try SafetensorsWriter.write(["latents": result.latents], to: outputLatents)
            }
        } catch { throw StudioError.wrap(error) }
        let seconds = Date().timeIntervalSince(start)
        if json {
            let obj: [String: Any] = ["outputs": paths, "seconds": seconds, "scheduler": result.schedulerName,
                                      "seed": req.seed, "steps": req.steps]
            try printJSON(obj)
        } else {
            for p in paths { print(p) }
        }
    }
}

/// A1111 sampler names ↔ Troupe scheduler names, for the PNG parameters chunk.
enum SamplerNames {
    static let table: [(String, String)] = [
        ("ddim", "DDIM"), ("pndm", "PLMS"), ("ddpm", "DDPM"), ("euler", "Euler"), ("euler-a", "Euler a"),
        ("dpmpp-2m", "DPM++ 2M"), ("dpmpp-2m-karras", "DPM++ 2M Karras"),
    ]
    static func a1111(_ troupe: String) -> String { table.first { $0.0 == troupe }?.1 ?? troupe }
    static func kind(a1111 name: String) -> SchedulerKind? {
        SchedulerKind(rawValue: table.first { $0.1 == name }?.0 ?? name)
    }
}
