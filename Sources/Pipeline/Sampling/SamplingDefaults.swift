// The one place sampling settings get their defaults. A model folder may recommend its own in
// `troupe.json` at its root (a Troupe file; diffusers ignores files it does not know):
//   {"guidance_scale": 6, "steps": 25, "lora_learning_rate": 0.002, "lora_steps": 300,
//    "lora_guidance_scale": 3, "lora_scale": 1.2, "lora_soup": 2,
//    "oneactor": {"offset_site": "summary", "steps": 400, "learning_rate": 0.001,
//                 "identity_weight": 5, "pose_weight": 0.3, "subject_mask": true}}
// (the LoRA keys: the character LoRA stages' learning rate and stage-1 steps, and the guidance
// scale for sampling a character through its stage LoRA — a LoRA fitted to a handful of images
// makes the prompt's conditional prediction sharper, so the plain scale over-guides it — and the
// multiplier that LoRA is sampled at, and how many tunings `tune stages` makes of a character to
// write their soup — LoRASoup — as its LoRA; `oneactor`: the
// settings `tune oneactor` starts from, and whether its cluster guidance samples with the
// subject mask; absent, the tuners' own defaults — the paper's — which
// suit SD 1.x.)
// Precedence everywhere (CLI, eval, bench, the studio): an explicit value, then what a PNG being
// re-made recorded, then the model's recommendation, then `standard` (diffusers' own defaults
// for SD 1.x: guidance 7.5, and the 25 steps the project's schedulers are tuned for).

import Foundation

public struct SamplingDefaults: Codable, Sendable, Equatable {
    public var guidanceScale: Float
    public var steps: Int
    /// The model's recommended LoRA learning rate and stage-1 steps for character tuning (nil:
    /// AppearanceTuningConfig's defaults).
    public var loraLearningRate: Float?
    public var loraSteps: Int?
    /// The model's recommended guidance scale for a character sampled through its stage LoRA
    /// (nil: `guidanceScale`). Read through `guidanceScale(characterLoRA:)`.
    public var loraGuidanceScale: Float?
    /// The model's recommended multiplier for a character's stage LoRA when sampling (nil: 1).
    /// Read through `stageLoRAScale`.
    public var loraScale: Float?
    /// How many tunings of a character `tune stages` souped into its LoRA (nil: 1, one tuning).
    /// Read through `stageSoup`.
    public var loraSoup: Int?
    /// The model's recommended learning-rate multiple for the stage tuners' summary offset
    /// (AppearanceTuningConfig.summaryOffsetLearningRateScale; nil: none is learned).
    public var loraSummaryOffset: Float?
    /// The model's recommended OneActor tuning (nil: OneActorConfig's defaults, the paper's).
    public var oneActor: OneActorRecommendation?
    /// Whether a character's cluster guidance applies only where the subject is, when neither
    /// the request nor the character says (off unless the model recommends it).
    public var oneActorSubjectMask: Bool { oneActor?.subjectMask ?? false }

    public init(guidanceScale: Float, steps: Int, loraLearningRate: Float? = nil, loraSteps: Int? = nil, loraGuidanceScale: Float? = nil,
                loraScale: Float? = nil, loraSoup: Int? = nil, loraSummaryOffset: Float? = nil, oneActor: OneActorRecommendation? = nil) {
        self.guidanceScale = guidanceScale; self.steps = steps; self.loraLearningRate = loraLearningRate; self.loraSteps = loraSteps
        self.loraGuidanceScale = loraGuidanceScale; self.loraScale = loraScale; self.loraSoup = loraSoup; self.loraSummaryOffset = loraSummaryOffset
        self.oneActor = oneActor
    }

    /// How many tunings `tune stages` soups when nothing else says: the model's recommendation, else 1.
    public var stageSoup: Int { loraSoup ?? 1 }
    /// The soup sizes `tune stages --soup` and `lora_soup` may ask for.
    public static let soupSizes = 1...8
    /// `soupSizes` as messages and help write it.
    public static let soupSizesText = "\(soupSizes.lowerBound)…\(soupSizes.upperBound)"

    /// The multiplier a character's stage LoRA is sampled at when nothing else says: the
    /// model's recommendation, else 1.
    public var stageLoRAScale: Float { loraScale ?? 1 }

    /// The guidance scale to sample with: the model's recommendation for a character sampled
    /// through its stage LoRA when `characterLoRA`, else (and where it has none) the plain one.
    public func guidanceScale(characterLoRA: Bool) -> Float {
        characterLoRA ? loraGuidanceScale ?? guidanceScale : guidanceScale
    }

    public static let standard = SamplingDefaults(guidanceScale: 7.5, steps: 25)
    public static let fileName = "troupe.json"

    enum CodingKeys: String, CodingKey {
        case guidanceScale = "guidance_scale", steps, loraLearningRate = "lora_learning_rate", loraSteps = "lora_steps", loraGuidanceScale = "lora_guidance_scale", loraScale = "lora_scale", loraSoup = "lora_soup", loraSummaryOffset = "lora_summary_offset", oneActor = "oneactor"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guidanceScale = try c.decodeIfPresent(Float.self, forKey: .guidanceScale) ?? Self.standard.guidanceScale
        steps = try c.decodeIfPresent(Int.self, forKey: .steps) ?? Self.standard.steps
        loraLearningRate = try c.decodeIfPresent(Float.self, forKey: .loraLearningRate)
        loraSteps = try c.decodeIfPresent(Int.self, forKey: .loraSteps)
        loraGuidanceScale = try c.decodeIfPresent(Float.self, forKey: .loraGuidanceScale)
        loraScale = try c.decodeIfPresent(Float.self, forKey: .loraScale)
        loraSoup = try c.decodeIfPresent(Int.self, forKey: .loraSoup)
        loraSummaryOffset = try c.decodeIfPresent(Float.self, forKey: .loraSummaryOffset)
        oneActor = try c.decodeIfPresent(OneActorRecommendation.self, forKey: .oneActor)
    }

    /// The folder's recommendation, `standard` where it has none. A file that is there but
    /// wrong is an error naming the file and the key.
    public static func load(folder: String) throws -> SamplingDefaults {
        let path = (folder as NSString).appendingPathComponent(fileName)
        guard let data = FileManager.default.contents(atPath: path) else { return standard }
        let d: SamplingDefaults
        do { d = try JSONDecoder().decode(SamplingDefaults.self, from: data) } catch {
            throw GenerationError.badValue("\(path): \(ConfigDecoding.describe(error)); expected {\"guidance_scale\": number, \"steps\": integer}")
        }
        guard d.guidanceScale.isFinite, d.guidanceScale >= 0, d.guidanceScale <= 100 else {
            throw GenerationError.badValue("\(path): guidance_scale \(d.guidanceScale) must be a number in 0…100")
        }
        if let g = d.loraGuidanceScale, !(g.isFinite && g >= 0 && g <= 100) {
            throw GenerationError.badValue("\(path): lora_guidance_scale \(g) must be a number in 0…100")
        }
        if let m = d.loraScale, !(m.isFinite && m >= 0 && m <= 100) {
            throw GenerationError.badValue("\(path): lora_scale \(m) must be a number in 0…100")
        }
        guard (1...1000).contains(d.steps) else { throw GenerationError.badValue("\(path): steps \(d.steps) must be in 1…1000") }
        if let lr = d.loraLearningRate, !(lr.isFinite && lr > 0 && lr <= 1) {
            throw GenerationError.badValue("\(path): lora_learning_rate \(lr) must be a number in (0, 1]")
        }
        if let n = d.loraSteps, !(1...100_000).contains(n) { throw GenerationError.badValue("\(path): lora_steps \(n) must be in 1…100000") }
        if let k = d.loraSummaryOffset, !(k.isFinite && k >= 0 && k <= 10_000) {
            throw GenerationError.badValue("\(path): lora_summary_offset \(k) must be a number in 0…10000 (0: no summary offset)")
        }
        if let n = d.loraSoup, !soupSizes.contains(n) { throw GenerationError.badValue("\(path): lora_soup \(n) must be in \(soupSizesText)") }
        if let o = d.oneActor {
            if let n = o.steps, !(1...100_000).contains(n) { throw GenerationError.badValue("\(path): oneactor.steps \(n) must be in 1…100000") }
            if let lr = o.learningRate, !(lr.isFinite && lr > 0 && lr <= 1) {
                throw GenerationError.badValue("\(path): oneactor.learning_rate \(lr) must be a number in (0, 1]")
            }
            for (k, w) in [("identity_weight", o.identityWeight), ("pose_weight", o.poseWeight)] {
                if let w, !(w.isFinite && w >= 0 && w <= 1000) { throw GenerationError.badValue("\(path): oneactor.\(k) \(w) must be a number in 0…1000") }
            }
        }
        return d
    }
}

/// A model's recommended OneActor settings (troupe.json's "oneactor"; every key optional).
public struct OneActorRecommendation: Codable, Sendable, Equatable {
    public var offsetSite: OffsetSite?
    public var steps: Int?
    public var learningRate: Float?
    public var identityWeight: Float?
    public var poseWeight: Float?
    /// Cluster guidance only where the subject is (ClusterGuidance's subject mask) when a
    /// character's settings and the request say nothing.
    public var subjectMask: Bool?

    public init(offsetSite: OffsetSite? = nil, steps: Int? = nil, learningRate: Float? = nil, identityWeight: Float? = nil, poseWeight: Float? = nil,
                subjectMask: Bool? = nil) {
        self.offsetSite = offsetSite; self.steps = steps; self.learningRate = learningRate; self.identityWeight = identityWeight; self.poseWeight = poseWeight
        self.subjectMask = subjectMask
    }

    enum CodingKeys: String, CodingKey {
        case offsetSite = "offset_site", steps, learningRate = "learning_rate", identityWeight = "identity_weight", poseWeight = "pose_weight"
        case subjectMask = "subject_mask"
    }
}
