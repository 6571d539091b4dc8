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
    @Option(help: "Classifier-free guidance scale (default: a PNG being re-made, else the model's troupe.json — for a character with a stage LoRA its lora_guidance_scale —, else 7.5).")
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
    @Option(help: "Generate as this character: its OneActor tuning (δ at its base word, cluster guidance), its model and prompt where no flag says otherwise.")
    var character: String?
    @Option(name: .customLong("v"), help: "With --character: interpolation weight of the character's offset (0: the base model; default: the character's setting).")
    var v: Float?
    @Option(help: "With --character: cluster guidance's target scale η1 (default: the character's setting, else the guidance scale).")
    var eta1: Float?
    @Option(help: "With --character: cluster guidance's auxiliary exclusion η2 (0: off).")
    var eta2: Float?
    @Option(name: .customLong("guidance-steps"), help: "With --character: the steps A:B (from 1) with the character's offset and cluster guidance; elsewhere plain guidance on the prompt without the offset (default: all).")
    var guidanceSteps: String?
    @Option(name: .customLong("subject-mask"), help: "With --character: on or off: cluster guidance only where the character is (the box of where naming it changes the prediction), the plain prompt's guidance around it, so the offset changes the character and not the scene, pose or emote around it (default: the character's setting, else the model's troupe.json).")
    var subjectMask: String?
    @Option(name: .customLong("identity-ref"), help: "Identity embedding: keep the character of this 64×64 PNG (zero-shot, through the identity adapter).")
    var identityRef: String?
    @Option(name: .customLong("identity-scale"), help: "Identity embedding's scale (default 1); with --character and no --identity-ref, its target is the reference.")
    var identityScale: Float?
    @Option(name: .customLong("identity-adapter"), help: "Identity adapter file (default: models/identity/adapter.safetensors, troupe-mini's).")
    var identityAdapter: String?
    @OptionGroup var storeOptions: StoreOptions
    @Option(name: .shortAndLong, help: "Output PNG path (with --count N: OUT.png, OUT-2.png, …).")
    var output: String?
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    /// The parameters chunk of --from-png (nil without it).
    func pngParameters() throws -> GenerationParameters? {
        guard let fromPNG else { return nil }
        let text: [(String, String)]
        do { text = try PNGCodec.readText(path: fromPNG) } catch { throw StudioError.wrap(error) }
        guard let p = text.first(where: { $0.0 == GenerationParameters.chunkKey }) else {
            throw StudioError.badInput("\(fromPNG): no `parameters` text chunk to re-create the generation from")
        }
        return GenerationParameters(text: p.1)
    }

    typealias Field = GenerationPNG.Field

    /// The character (flag, else the PNG's) and the OneActor controls (flags over the PNG's).
    func characterAndControls(_ png: GenerationParameters?) throws -> (String?, CharacterControls) {
        func field(_ k: String) -> String? { png?.extra.first { $0.0 == k }?.1 }
        let name = character ?? field(Field.character)
        var c = CharacterControls(v: v ?? field(Field.v).flatMap(Float.init), eta1: eta1 ?? field(Field.eta1).flatMap(Float.init),
                                 eta2: eta2 ?? field(Field.eta2).flatMap(Float.init))
        if let s = guidanceSteps ?? field(Field.steps) { c.guidanceSteps = try CharacterControls.steps(flag: s) }
        if let s = subjectMask ?? field(Field.subjectMask) { c.subjectMask = try OnOffFlag.value(s, flag: "--subject-mask") }
        if name == nil, v != nil || eta1 != nil || eta2 != nil || guidanceSteps != nil || subjectMask != nil {
            throw StudioError.badInput("--v, --eta1, --eta2, --guidance-steps and --subject-mask apply with --character NAME")
        }
        return (name, c)
    }

    /// The request the flags (over the PNG's settings `png`) describe, and which image of the
    /// batch to keep (a PNG from a batch is re-created by re-running its whole batch). Steps and
    /// guidance come later, from `sampling(png:defaults:characterLoRA:)`, once the model is loaded.
    func request(png: GenerationParameters?, characterPrompt: String? = nil) throws -> (GenerationRequest, keep: Int?) {
        let base = png ?? GenerationParameters(prompt: "")
        guard let text = prompt ?? (fromPNG != nil ? base.prompt : characterPrompt) else {
            throw StudioError.badInput("--prompt is required (or --from-png FILE, or --character NAME for its own prompt)")
        }
        var r = GenerationRequest(prompt: text)
        r.negativePrompt = negative ?? base.negativePrompt
        r.seed = seed ?? base.seed ?? 0
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
           let index = base.extra.first(where: { $0.0 == "Batch index" }).flatMap({ Int($0.1) }), (2...64).contains(size), (0..<size).contains(index) {
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

    /// Steps and guidance scale: the flag, else the PNG's, else the model's recommendation (for
    /// a character sampled through its stage LoRA, `characterLoRA`, the one it makes for that).
    func sampling(png: GenerationParameters?, defaults: SamplingDefaults, characterLoRA: Bool) -> (steps: Int, guidanceScale: Float) {
        (steps ?? png?.steps ?? defaults.steps, cfg ?? png?.cfgScale.map(Float.init) ?? defaults.guidanceScale(characterLoRA: characterLoRA))
    }

    /// --lora FILE[:SCALE] values. A PNG being re-made (`png`) that names LoRA files with no
    /// --lora given is refused: paths a PNG names are never opened on its say-so.
    func loraSpecifications(png: GenerationParameters?) throws -> [(String, Float)] {
        if loras.isEmpty, let fromPNG, let field = png?.extra.first(where: { $0.0 == Field.lora }) {
            throw StudioError.badInput("\(fromPNG) was made with LoRA \(field.1.replacingOccurrences(of: "|", with: ", ")); Troupe does not open files a PNG names: pass each with --lora FILE:SCALE")
        }
        return try loras.map { spec in
            if let colon = spec.lastIndex(of: ":"), let scale = Float(spec[spec.index(after: colon)...]) {
                guard scale.isFinite, abs(scale) <= 100 else { throw StudioError.badInput("--lora \(spec): the scale must be a finite number (at most 100 in size)") }
                return (String(spec[..<colon]), scale)
            }
            guard !spec.isEmpty else { throw StudioError.badInput("--lora needs FILE[:SCALE]") }
            if spec.contains(":"), let colon = spec.lastIndex(of: ":"), Float(spec[spec.index(after: colon)...]) == nil,
               !FileManager.default.fileExists(atPath: spec) {
                throw StudioError.badInput("--lora \(spec): the scale after ':' must be a number")
            }
            return (spec, 1)
        }
    }

    /// The identity embedding asked for, if any: the reference PNG to read, the scale, and what
    /// the PNG records. --identity-ref FILE; or, with a character, its target when
    /// --identity-scale is given (or a PNG being re-made used it). A PNG's own reference file is
    /// never opened on its say-so.
    func identityPlan(png: GenerationParameters?, record: CharacterRecord?) throws -> (reference: String, scale: Float, recorded: String)? {
        func field(_ k: String) -> String? { png?.extra.first { $0.0 == k }?.1 }
        let scale = identityScale ?? field(Field.identityScale).flatMap(Float.init) ?? IdentityAdapter.defaultScale
        if let identityRef { return (identityRef, scale, (identityRef as NSString).lastPathComponent) }
        let recorded = field(Field.identityReference)
        guard identityScale != nil || recorded != nil else { return nil }
        if let record, recorded == nil || recorded == Field.characterTarget {
            return (try IdentityReference.targetPath(of: record, in: storeOptions.store), scale, Field.characterTarget)
        }
        if let recorded, let fromPNG {
            throw StudioError.badInput("\(fromPNG) was made with the identity reference \(recorded); Troupe does not open files a PNG names: pass it with --identity-ref FILE")
        }
        throw StudioError.badInput("--identity-scale needs a reference: --identity-ref FILE, or --character NAME for its target")
    }

    func outputPaths(_ n: Int, seed: UInt64) -> [String] {
        let base = output ?? "troupe-\(seed).png"
        if n == 1 { return [base] }
        let ext = (base as NSString).pathExtension, stem = (base as NSString).deletingPathExtension
        return (0..<n).map { $0 == 0 ? base : "\(stem)-\($0 + 1).\(ext.isEmpty ? "png" : ext)" }
    }

    func run() throws {
        let png = try pngParameters()
        let (characterName, controls) = try characterAndControls(png)
        let record = try characterName.map { n in try storeCall { try storeOptions.store.load(n) } }
        let loraSpecs = try loraSpecifications(png: png)
        let identity = try identityPlan(png: png, record: record)
        var (req, keep) = try request(png: png, characterPrompt: record?.prompt)   // bad flags are refused before the model loads
        let modelRef = model ?? record.flatMap { $0.model == ModelLocator.defaultModelName ? nil : $0.model }
        let (pipeline, modelName) = try ModelLocator.loadPipeline(modelRef)
        // The character's latest stage LoRA, unless --lora names the adapters to use.
        let artifacts = record.map { CharacterArtifacts(folder: storeOptions.store.folder($0.name)) }
        let stageLoRA = loraSpecs.isEmpty ? artifacts?.latestLoRA : nil
        (req.steps, req.guidanceScale) = sampling(png: png, defaults: pipeline.defaults, characterLoRA: stageLoRA != nil)
        if let record, prompt == nil, fromPNG == nil { req.negativePrompt = negative ?? record.negativePrompt }
        var conditioning: Conditioning? = nil, guidance: Guidance? = nil
        var troupeFields: [(String, String)] = []
        var characterLoRA: String? = nil
        /// The summary offsets the LoRAs carry (their stage tuners' pivotal offset), applied to the prompt branches.
        var offsets: [(offset: SummaryOffset, multiplier: Float)] = []
        if let record, let artifacts {
            // The character's tuning: its latest stage LoRA and/or its OneActor δ and guidance.
            // The stage LoRA's multiplier: what a PNG being re-made recorded (the studio's slider;
            // none recorded: 1, as it was made), else the model's recommendation.
            let recorded = png?.extra.first { $0.0 == Field.characterLoRAScale }.flatMap { Float($0.1) }.flatMap { $0.isFinite && abs($0) <= 100 ? $0 : nil }
            let loraScale = recorded ?? (png != nil ? 1 : pipeline.defaults.stageLoRAScale)
            if let lora = stageLoRA {
                do {
                    let file = try LoRAFile(path: lora)
                    try file.attach(multiplier: loraScale, unet: pipeline.unet, textEncoder: pipeline.textEncoder).merge()
                    if let o = file.summaryOffset { offsets.append((o, loraScale)) }
                } catch { throw StudioError.wrap(error) }
                characterLoRA = ((lora as NSString).lastPathComponent as NSString).deletingPathExtension
            }
            // Without OneActor, the character's LoRA or identity embedding is its tuning.
            if artifacts.hasOneActor || (characterLoRA == nil && identity == nil) {
                let tuning = try CharacterTuning.load(storeOptions.store, name: record.name, pipeline: pipeline)
                req.characterControls = controls
                let (cond, g, v) = try tuning.prepare(try pipeline.validate(req).request, pipeline: pipeline)
                conditioning = cond; guidance = g
                troupeFields = GenerationPNG.characterFields(name: record.name, v: v, guidance: g as! ClusterGuidance)
            } else {
                troupeFields = [(Field.character, record.name)]
            }
            // The character's own LoRA, named by stage (it is found in the store by the character's name).
            if let stage = characterLoRA {
                troupeFields.append((Field.characterLoRA, stage))
                if loraScale != 1 { troupeFields.append((Field.characterLoRAScale, GenerationPNG.text(loraScale))) }
            }
        }
        if let identity {
            let ref = try IdentityReference.load(pipeline: pipeline, adapter: identityAdapter)
            let embedding = try ref.embedding(png: identity.reference)
            conditioning = try ref.attach(to: conditioning ?? pipeline.encodePrompts(try pipeline.validate(req).request), embedding: embedding, scale: identity.scale)
            troupeFields += IdentityReference.pngFields(scale: identity.scale, reference: identity.recorded)
        }
        for (path, scale) in loraSpecs {
            // Merged into the weights: a LoRA costs nothing per step.
            do {
                let file = try LoRAFile(path: path)
                try file.attach(multiplier: scale, unet: pipeline.unet, textEncoder: pipeline.textEncoder).merge()
                if let o = file.summaryOffset { offsets.append((o, scale)) }
            } catch { throw StudioError.wrap(error) }
        }
        for (o, m) in offsets {
            do {
                conditioning = try o.apply(to: conditioning ?? pipeline.encodePrompts(try pipeline.validate(req).request), prompt: req.prompt, tokenizer: pipeline.tokenizer,
                                           loraMultiplier: m)
            } catch { throw StudioError.badInput("the LoRA's summary offset: \(error)") }
        }
        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "generate", quiet: false)
        let start = Date()
        let result: GenerationResult
        do {
            result = try pipeline.generate(req, conditioning: conditioning, guidance: guidance,
                                           warn: { FileHandle.standardError.write(Data("\ntroupe: warning: \($0)\n".utf8)) }) { step, total in
                progress.update(step: step, total: total)
                return !interrupt.isSet
            }
        } catch { progress.finish(); throw StudioError.wrap(error) }
        progress.finish()
        let kept = keep.map { [$0] } ?? Array(result.images.indices)
        let paths = outputPaths(kept.count, seed: req.seed)
        do {
            for (n, i) in kept.enumerated() {
                let p = GenerationPNG.parameters(req, result, index: i, model: modelName, loras: loraSpecs, extra: troupeFields)
                try GenerationPNG.write(result, index: i, parameters: p, to: paths[n])
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
