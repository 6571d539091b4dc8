// Renders the Generate screen's preview in the background through the same pipeline, request
// and character tuning as `troupe generate`. Requests are debounced (a slider held down
// renders once it settles) and a newer request cancels the one in flight at its next
// denoising step. The loaded pipeline stays (one per model); the character's OneActor tuning
// is reloaded when its files change, and its stage LoRA is attached once and rescaled or
// detached (Adapters/LoRASet) — never by reloading the model; the identity embedding of its
// target is computed once per target file and model.

import Foundation
import Pipeline
import Preview

final class PreviewRenderer: @unchecked Sendable {
    struct Output {
        let id: Int
        let settings: GenerateSettings
        let result: GenerationResult
        let parameters: GenerationParameters
        let seconds: Double
        var image: RGBImage { RGBImage(width: result.width, height: result.height, pixels: result.images[0]) }
    }
    enum Event { case started(Int), progress(Int, step: Int, total: Int), finished(Output), failed(Int, String) }

    let store: CharacterStore
    private let deliver: (Event) -> Void
    private let queue = DispatchQueue(label: "troupe.preview", qos: .userInitiated)
    private let lock = NSLock()
    private var latest = 0
    // Owned by `queue`:
    private var pipelines: [String: (StableDiffusionPipeline, String)] = [:]
    private var tuning: (key: String, value: CharacterTuning)?
    private var lora: (key: String, set: LoRASet, offset: SummaryOffset?)?
    private var identity: (key: String, reference: IdentityReference, embedding: Tensor)?

    init(store: CharacterStore, deliver: @escaping (Event) -> Void) { self.store = store; self.deliver = deliver }

    var latestID: Int { lock.lock(); defer { lock.unlock() }; return latest }

    /// Queues a render of `settings` after `debounce` seconds unless a newer one arrives;
    /// returns its id.
    @discardableResult
    func submit(_ settings: GenerateSettings, debounce: Double = 0.12) -> Int {
        lock.lock(); latest += 1; let id = latest; lock.unlock()
        queue.asyncAfter(deadline: .now() + debounce) { [self] in
            guard id == latestID else { return }
            render(settings, id: id)
        }
        return id
    }

    /// Stops any render in flight (at its next step).
    func cancel() { lock.lock(); latest += 1; lock.unlock() }

    /// Cancels and waits until no render runs: the studio calls it before it exits, so the
    /// process never exits while this queue is inside the pipeline (exit's teardown of BLAS
    /// threads and globals would run under it). The suspected cause of one SIGSEGV at quit in
    /// the random-keys tmux test on CI, not reproduced since. The wait is at most one step.
    func stop() {
        cancel()
        queue.sync {}
    }

    /// The defaults of the model `settings` name (loads it on the caller's thread if needed).
    func defaults(model: String?) throws -> SamplingDefaults { try queue.sync { try pipeline(model).0.defaults } }

    private func pipeline(_ model: String?) throws -> (StableDiffusionPipeline, String) {
        let key = model ?? ""
        if let p = pipelines[key] { return p }
        let p = try ModelLocator.loadPipeline(model)
        pipelines = [key: p]   // one model resident: a studio switches models rarely
        tuning = nil; lora = nil; identity = nil
        return p
    }

    /// A file's identity for caches: path, size and modification time.
    private static func stamp(_ path: String) -> String? {
        guard let a = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
        return "\(path)|\(a[.size] ?? 0)|\((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
    }

    private func render(_ s: GenerateSettings, id: Int) {
        deliver(.started(id))
        let start = Date()
        do {
            let (pipe, modelName) = try pipeline(s.model)
            var conditioning: Conditioning?, guidance: Guidance?, extra: [(String, String)] = []
            var withCharacter = false
            if let name = s.character {
                let folder = store.folder(name)
                // OneActor: δ at the base word and cluster guidance, when the character has them.
                if let key = PreviewRenderer.stamp(folder + "/oneactor/projector.safetensors") {
                    if tuning?.key != key { tuning = (key, try CharacterTuning.load(store, name: name, pipeline: pipe)) }
                    withCharacter = true
                } else { tuning = nil }
                // The latest stage LoRA, attached once, rescaled by the slider.
                let loraPath = CharacterArtifacts(folder: folder).latestLoRA
                let loraKey = loraPath.flatMap(PreviewRenderer.stamp)
                if lora?.key != loraKey { lora?.set.detach(); lora = nil }
                if let loraPath, let loraKey, lora == nil {
                    let file = try LoRAFile(path: loraPath)
                    let set = try file.attach(multiplier: s.loraScale, unet: pipe.unet, textEncoder: pipe.textEncoder)
                    set.merge()   // sampling at the base model's cost; a rescale re-merges
                    lora = (loraKey, set, file.summaryOffset)
                }
                if let l = lora {
                    if l.set.multiplier != s.loraScale { l.set.rescale(s.loraScale) }
                    extra.append((GenerationPNG.Field.characterLoRA, ((loraPath! as NSString).lastPathComponent as NSString).deletingPathExtension))
                    if s.loraScale != 1 { extra.append((GenerationPNG.Field.characterLoRAScale, GenerationPNG.text(s.loraScale))) }
                }
            } else if let l = lora { l.set.detach(); lora = nil }
            let req = s.request(pipe, withCharacter: withCharacter)
            if withCharacter, let t = tuning?.value {
                let (c, g, v) = try t.prepare(try pipe.validate(req).request, pipeline: pipe)
                conditioning = c; guidance = g
                extra = GenerationPNG.characterFields(name: t.record.name, v: v, guidance: g as! ClusterGuidance) + extra
            } else if let name = s.character {
                extra = [(GenerationPNG.Field.character, name)] + extra
            }
            // The stage LoRA's summary offset, on the prompt branches.
            if let o = lora?.offset {
                conditioning = try o.apply(to: conditioning ?? pipe.encodePrompts(try pipe.validate(req).request), prompt: req.prompt, tokenizer: pipe.tokenizer,
                                           loraMultiplier: s.loraScale)
            }
            // The identity embedding of the character's target, at the slider's scale.
            if let name = s.character, s.identityScale != 0 {
                let path = try IdentityReference.targetPath(of: try store.load(name), in: store)
                let key = modelName + "|" + (PreviewRenderer.stamp(path) ?? path)
                if identity?.key != key {
                    let ref = try IdentityReference.load(pipeline: pipe)
                    identity = (key, ref, try ref.embedding(png: path))
                }
                conditioning = try identity!.reference.attach(to: conditioning ?? pipe.encodePrompts(try pipe.validate(req).request),
                                                              embedding: identity!.embedding, scale: s.identityScale)
                extra += IdentityReference.pngFields(scale: s.identityScale, reference: GenerationPNG.Field.characterTarget)
            }
            let result = try pipe.generate(req, conditioning: conditioning, guidance: guidance, warn: { _ in }) { [self] step, total in
                guard id == latestID else { return false }
                deliver(.progress(id, step: step, total: total))
                return true
            }
            guard id == latestID else { return }
            // The character's stage LoRA is recorded in `extra` by stage, never as a path.
            let p = GenerationPNG.parameters(req, result, index: 0, model: modelName, loras: [], extra: extra)
            deliver(.finished(Output(id: id, settings: s, result: result, parameters: p, seconds: Date().timeIntervalSince(start))))
        } catch {
            if id == latestID { deliver(.failed(id, "\(error)")) }
        }
    }
}
