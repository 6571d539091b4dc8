// One sampling setting `troupe eval` measures a method under. A tuned method is tuned once per
// character and sampled under each of its variants, so sweeping the guidance or the stage
// LoRA's multiplier costs sampling, not tuning (the stages' tuning is most of an eval's time).

import Pipeline

struct EvalVariant: Hashable {
    let method: EvalMethod
    let guidanceScale: Float
    /// The tuned stage LoRA's multiplier (stage methods only).
    let loraScale: Float?
    /// The method's name, with the sweep's values where a flag gave several.
    let label: String

    /// `method`'s variants: each guidance in `cfgs` (nil: the model's own, for the stage methods
    /// its recommendation through a stage LoRA) × each of `loraScales` for a stage method.
    static func all(for method: EvalMethod, cfgs: [Float]?, loraScales: [Float], defaults: SamplingDefaults) -> [EvalVariant] {
        let tuned = method.tunedStages != nil
        let guidance = cfgs ?? [defaults.guidanceScale(characterLoRA: tuned)]
        let scales: [Float?] = tuned ? loraScales : [nil]
        return guidance.flatMap { g in
            scales.map { s in
                var label = method.rawValue
                if guidance.count > 1 { label += " cfg " + GenerationPNG.text(g) }
                if let s, loraScales.count > 1 { label += " lora " + GenerationPNG.text(s) }
                return EvalVariant(method: method, guidanceScale: g, loraScale: s, label: label)
            }
        }
    }
}
