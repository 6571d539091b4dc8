// One character of a consistency grid: its record, its model and its tunings, loaded once and
// drawn column by column (GridMethod). A column's stage LoRA is attached to the loaded model for
// that column only and detached after it (Adapters/LoRASet), so the next column — or the next
// character on the same model — starts from the base weights.

import Foundation
import Pipeline
import Preview

final class GridCharacter {
    let record: CharacterRecord
    let pipeline: StableDiffusionPipeline
    let store: CharacterStore
    private var artifacts: CharacterArtifacts { CharacterArtifacts(folder: store.folder(record.name)) }
    private var tuning: CharacterTuning?
    private var identityReference: (IdentityReference, Tensor)?

    init(record: CharacterRecord, pipeline: StableDiffusionPipeline, store: CharacterStore) {
        self.record = record; self.pipeline = pipeline; self.store = store
    }

    var hasOneActor: Bool { artifacts.hasOneActor }
    var hasStages: Bool { artifacts.latestLoRA != nil }
    /// A target to read and an identity adapter for this model.
    var hasIdentity: Bool { record.target != nil && (try? identity()) != nil }

    /// Loads what `m` needs, so a missing tuning is a clear error before anything is drawn.
    func check(_ m: GridMethod) throws {
        _ = try loraPath(m)
        if m.oneActor { _ = try oneActor() }
        if m.identity { _ = try identity() }
    }

    private func loraPath(_ m: GridMethod) throws -> String? {
        switch m.stage {
        case nil: return nil
        case .latest?:
            guard let p = artifacts.latestLoRA else {
                throw StudioError.badInput("\(record.name) has no stage LoRA yet; run `troupe tune stage1 \(record.name)` (or `tune stages`) first")
            }
            return p
        case .stage(let k)?:
            let p = artifacts.lora(stage: k)
            guard FileManager.default.fileExists(atPath: p) else {
                throw StudioError.badInput("\(record.name) has no stage-\(k) LoRA yet; run `troupe tune stage\(k) \(record.name)` first")
            }
            return p
        }
    }

    private func oneActor() throws -> CharacterTuning {
        if let tuning { return tuning }
        let t = try CharacterTuning.load(store, name: record.name, pipeline: pipeline)
        tuning = t
        return t
    }

    private func identity() throws -> (IdentityReference, Tensor) {
        if let identityReference { return identityReference }
        let ref = try IdentityReference.load(pipeline: pipeline)
        let loaded = (ref, try ref.embedding(png: try IdentityReference.targetPath(of: record, in: store)))
        identityReference = loaded
        return loaded
    }

    /// Column `m` for `requests` (one image each): the stage LoRA merged at the model's
    /// multiplier and sampled at its guidance for a LoRA, OneActor's δ and cluster guidance
    /// (`eta2` over the character's setting), the identity tokens of its target. `drawn` is
    /// told after each image and returns false to stop.
    func draw(_ m: GridMethod, _ requests: [GenerationRequest], eta2: Float?, drawn: () -> Bool) throws -> [RGBImage] {
        var set: LoRASet? = nil, offset: SummaryOffset? = nil
        if let path = try loraPath(m) {
            do {
                let file = try LoRAFile(path: path)
                set = try file.attach(multiplier: pipeline.defaults.stageLoRAScale, unet: pipeline.unet, textEncoder: pipeline.textEncoder)
                offset = file.summaryOffset
            } catch { throw StudioError.wrap(error) }
            set?.merge()
        }
        defer { set?.detach() }
        let scale = pipeline.defaults.guidanceScale(characterLoRA: set != nil)
        var images: [RGBImage] = []
        for var r in requests {
            r.guidanceScale = scale
            var conditioning: Conditioning? = nil, guidance: Guidance? = nil
            if m.oneActor {
                r.characterControls = CharacterControls(v: m.v, eta2: eta2)
                (conditioning, guidance, _) = try oneActor().prepare(try pipeline.validate(r).request, pipeline: pipeline)
            }
            if let offset {
                do { conditioning = try offset.apply(to: conditioning ?? pipeline.encodePrompts(try pipeline.validate(r).request), prompt: r.prompt, tokenizer: pipeline.tokenizer,
                                                           loraMultiplier: pipeline.defaults.stageLoRAScale) } catch {
                    throw StudioError.badInput("\(record.name)'s summary offset: \(error)")
                }
            }
            if m.identity {
                let (ref, embedding) = try identity()
                conditioning = try ref.attach(to: conditioning ?? pipeline.encodePrompts(try pipeline.validate(r).request),
                                              embedding: embedding, scale: IdentityAdapter.defaultScale)
            }
            let out: GenerationResult
            do { out = try pipeline.generate(r, conditioning: conditioning, guidance: guidance) } catch { throw StudioError.wrap(error) }
            images.append(RGBImage(width: out.width, height: out.height, pixels: out.images[0]))
            guard drawn() else { throw StudioError.cancelled("grid interrupted") }
        }
        return images
    }
}
