// Generation with a character's tuning, one place for the CLI (`generate --character`), eval,
// grids and the studio's sliders: the character's OneActor projector and cluster data become an
// adapter on the request's Conditioning, and its settings (v, η1, η2, guidance steps, subject mask) the
// defaults of a ClusterGuidance where the caller sets nothing.

import Foundation
import Pipeline

extension CharacterControls {
    /// `--guidance-steps A:B`, or a usage error.
    static func steps(flag text: String) throws -> ClosedRange<Int> {
        guard let r = parseSteps(text) else {
            throw StudioError.badInput("--guidance-steps takes A:B with 1 ≤ A ≤ B (steps counted from 1), got '\(text)'")
        }
        return r
    }
}

struct CharacterTuning {
    let record: CharacterRecord
    let adapter: OneActorAdapter

    /// The character's OneActor result for the model loaded now.
    static func load(_ store: CharacterStore, name: String, pipeline: StableDiffusionPipeline) throws -> CharacterTuning {
        let record = try storeCall { try store.load(name) }
        let dir = store.folder(record.name) + "/oneactor"
        guard FileManager.default.fileExists(atPath: dir + "/projector.safetensors") else {
            throw StudioError.badInput("\(record.name) has no OneActor tuning yet; run `troupe tune oneactor \(record.name)` first")
        }
        do {
            let fingerprint = pipeline.fingerprint
            let (projector, site) = try OneActorAdapter.loadProjector(path: dir + "/projector.safetensors", model: fingerprint)
            let cluster = try OneActorCluster.load(path: dir + "/cluster.safetensors", model: fingerprint)
            return CharacterTuning(record: record, adapter: OneActorAdapter(projector: projector, cluster: cluster, site: site))
        } catch let e as OneActorError { throw StudioError.badInput("\(e)") } catch let e as StudioError { throw e } catch { throw StudioError.wrap(error) }
    }

    /// The resolved controls for a request (its guidance scale is the outside-range scale).
    func resolve(_ c: CharacterControls, request: GenerationRequest, defaults: SamplingDefaults) throws -> (v: Float, guidance: ClusterGuidance) {
        let v = c.v ?? record.settings.v
        let eta1 = c.eta1 ?? record.settings.eta1 ?? request.guidanceScale
        let eta2 = c.eta2 ?? record.settings.eta2
        for (name, x) in [("v", v), ("eta1", eta1), ("eta2", eta2)] where !x.isFinite || abs(x) > 1000 {
            throw StudioError.badInput("--\(name) must be a finite number (at most 1000 in size), got \(x)")
        }
        let subjectMask = c.subjectMask ?? record.settings.subjectMask ?? defaults.oneActorSubjectMask
        return (v, ClusterGuidance(eta1: eta1, eta2: eta2, steps: c.guidanceRange(steps: request.steps), outsideScale: request.guidanceScale,
                                   subjectMask: subjectMask))
    }

    /// Conditioning and guidance for `request` with this character, under the request's own
    /// `characterControls` (the sliders' values).
    func prepare(_ request: GenerationRequest, pipeline: StableDiffusionPipeline) throws -> (Conditioning, Guidance, v: Float) {
        let (v, guidance) = try resolve(request.characterControls ?? CharacterControls(), request: request, defaults: pipeline.defaults)
        let subjectless = guidance.subjectMask ? record.prompt : nil
        do { return (try adapter.conditioning(for: request, pipeline: pipeline, v: v, subjectlessOf: subjectless), guidance, v) } catch {
            throw StudioError.badInput("\(error)")
        }
    }
}
