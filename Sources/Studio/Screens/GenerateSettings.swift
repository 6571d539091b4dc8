// The Generate screen's settings as a plain value: what the sliders and fields hold, turned
// into the one `GenerationRequest` the CLI builds from flags (design §2). Optional values are
// "the model's / the character's default", so a slider nobody touched follows the defaults.

import Foundation
import Pipeline

struct GenerateSettings: Equatable, Sendable {
    var character: String?
    /// Model reference (nil: the embedded default).
    var model: String?
    var prompt = ""
    var negative = ""
    var cfg: Float
    var steps: Int
    var seed: UInt64 = 0
    /// Multiplier of the character's stage LoRA (when it has one).
    var loraScale: Float
    /// OneActor controls (used when the character has a OneActor tuning).
    var v: Float = OneActorAdapter.defaultV
    var eta1: Float?
    var eta2: Float = 0
    /// 1-based inclusive step range of cluster guidance (nil: every step).
    var guidanceSteps: ClosedRange<Int>?
    /// Cluster guidance only where the character is (ClusterGuidance's subject mask).
    var subjectMask: Bool
    /// Scale of the identity embedding, the character's target as the reference (0: off).
    var identityScale: Float = 0

    init(defaults: SamplingDefaults = .standard) {
        cfg = defaults.guidanceScale; steps = defaults.steps; loraScale = defaults.stageLoRAScale; subjectMask = defaults.oneActorSubjectMask
    }

    /// Settings for `record`: its prompt, seed and saved OneActor settings; its guidance, or the
    /// model's for a character sampled through its stage LoRA when it has one (`characterLoRA`).
    init(character record: CharacterRecord, defaults: SamplingDefaults, characterLoRA: Bool) {
        self.init(defaults: defaults)
        character = record.name
        model = record.model == ModelLocator.defaultModelName ? nil : record.model
        prompt = record.prompt; negative = record.negativePrompt; seed = record.seed
        cfg = record.settings.guidanceScale(defaults: defaults, characterLoRA: characterLoRA); steps = record.settings.steps
        v = record.settings.v; eta1 = record.settings.eta1; eta2 = record.settings.eta2
        subjectMask = record.settings.subjectMask ?? defaults.oneActorSubjectMask
    }

    /// The request these settings describe on `pipeline` (its size and scheduler defaults).
    func request(_ pipeline: StableDiffusionPipeline, withCharacter: Bool) -> GenerationRequest {
        var r = pipeline.request(prompt: prompt)
        r.negativePrompt = negative; r.seed = seed; r.steps = steps; r.guidanceScale = cfg
        if withCharacter { r.characterControls = CharacterControls(v: v, eta1: eta1, eta2: eta2, guidanceSteps: guidanceSteps, subjectMask: subjectMask) }
        return r
    }
}
