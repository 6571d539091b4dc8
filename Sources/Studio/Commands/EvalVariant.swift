// One sampling setting `troupe eval` measures a method under. A tuned method is tuned once per
// character and sampled under each of its variants, so sweeping the guidance, the stage LoRA's
// multiplier or OneActor's v costs sampling, not tuning (the stages' tuning is most of an
// eval's time). v = 0 samples without the offset: `stages+oneactor` at v 0 is the plain stages
// on the same tuning, a paired comparison.

import Pipeline

struct EvalVariant: Hashable {
    let method: EvalMethod
    let guidanceScale: Float
    /// The tuned stage LoRA's multiplier (stage methods only).
    let loraScale: Float?
    /// OneActor's interpolation weight (methods that sample with its offset only).
    let v: Float?
    /// Reference-only attention's scale (stage methods: to the first accepted reference;
    /// OneActor: to its target; nil or 0: off).
    let referenceScale: Float?
    /// Scene-word masking (SceneWordMask): the prompt's words outside the character's prompt
    /// skipped by every cross-attention layer.
    let sceneMask: Bool
    /// Cluster guidance only where the subject is (ClusterGuidance's subject mask; methods with
    /// a OneActor offset).
    let subjectMask: Bool
    /// Which of a tuned method's tunings it samples when `--stage-seeds` / `--oneactor-seeds`
    /// tuned several.
    let tuning: TuningChoice
    /// The method's name, with the sweep's values where a flag gave several.
    let label: String

    /// `method`'s variants: each guidance in `cfgs` (nil: the model's own, for the stage methods
    /// its recommendation through a stage LoRA) × each of `loraScales` for a stage method × each
    /// of `vs` for a method with a OneActor offset × each of `sceneMasks` for a method that
    /// samples a prompt (not `reference`) × each of `subjectMasks` for a method with a OneActor
    /// offset × for a stage method tuned `stageSeeds` > 1 times (a
    /// OneActor method without stages `oneActorSeeds` > 1 times), each tuning alone and their two
    /// soups — or, for a stage method without `everyStageTuning` (its tunings are the model's
    /// `lora_soup`, what `tune stages` writes), their norm-matched soup alone, under the method's name.
    static func all(for method: EvalMethod, cfgs: [Float]?, loraScales: [Float], vs: [Float], referenceScales: [Float]? = nil,
                    sceneMasks: [Bool] = [false], subjectMasks: [Bool] = [false], stageSeeds: Int = 1, everyStageTuning: Bool = true, oneActorSeeds: Int = 1,
                    defaults: SamplingDefaults) -> [EvalVariant] {
        let tuned = method.tunedStages != nil
        let guidance = cfgs ?? [defaults.guidanceScale(characterLoRA: tuned)]
        let scales: [Float?] = tuned ? loraScales : [nil]
        let weights: [Float?] = method.usesOneActor ? vs : [nil]
        let references: [Float?] = tuned || method.usesOneActor ? (referenceScales.map { $0.map(Optional.some) } ?? [nil]) : [nil]
        let masks = method == .reference ? [false] : sceneMasks
        let subjects = method.usesOneActor ? subjectMasks : [false]
        let k = tuned ? stageSeeds : method.usesOneActor ? oneActorSeeds : 1
        let productOnly = tuned && !everyStageTuning
        let tunings: [TuningChoice] = k == 1 ? [.only] : productOnly ? [.normMatchedSoup] : (0..<k).map(TuningChoice.seed) + [.soup, .normMatchedSoup]
        var out: [EvalVariant] = []
        for g in guidance { for s in scales { for v in weights { for ref in references { for mask in masks { for subject in subjects { for t in tunings {
            var label = method.rawValue
            if guidance.count > 1 { label += " cfg " + GenerationPNG.text(g) }
            if let s, loraScales.count > 1 { label += " lora " + GenerationPNG.text(s) }
            if let v, vs.count > 1 { label += " v " + GenerationPNG.text(v) }
            if let ref { label += " ref " + GenerationPNG.text(ref) }
            if masks.count > 1 { label += mask ? " mask on" : " mask off" }
            if subjects.count > 1 { label += subject ? " subject on" : " subject off" }
            switch t {
            case .only: break
            case .seed(let k): label += " seed \(k)"
            case .soup: label += " soup \(k)"
            case .normMatchedSoup: if !productOnly { label += " soup \(k) norm-matched" }
            }
            out.append(EvalVariant(method: method, guidanceScale: g, loraScale: s, v: v, referenceScale: ref, sceneMask: mask, subjectMask: subject,
                                   tuning: t, label: label))
        } } } } } } }
        return out
    }
}

/// Which of a tuned method's tunings a variant samples.
enum TuningChoice: Hashable {
    /// The one tuning (without `--stage-seeds`).
    case only
    /// One of several (0-based).
    case seed(Int)
    /// Their soup: the mean of their weight deltas (LoRASoup; OneActor: of their offsets).
    case soup
    /// Their soup rescaled per layer to their mean norm (LoRASoup, norm-matched).
    case normMatchedSoup

    /// The JSON's `tuning` value.
    var name: String {
        switch self {
        case .only: return "only"
        case .seed(let k): return "seed \(k)"
        case .soup: return "soup"
        case .normMatchedSoup: return "soup norm-matched"
        }
    }
}
