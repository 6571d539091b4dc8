// What a generated PNG records about itself (its A1111 `parameters` chunk plus Troupe's
// fields), in one place for `troupe generate` and the studio's preview: a PNG saved from
// either re-creates with `troupe generate --from-png`.

import Foundation
import Pipeline
import Preview

enum GenerationPNG {
    /// Troupe's fields in a PNG's parameters.
    enum Field {
        static let character = "Character", v = "OneActor v", eta1 = "OneActor eta1", eta2 = "OneActor eta2", steps = "Guidance steps"
        static let subjectMask = "Subject mask"
        static let lora = "Troupe LoRA"
        /// The character's own stage LoRA ("stage2"), applied by `--character`, never by path.
        static let characterLoRA = "Character LoRA"
        static let characterLoRAScale = "Character LoRA scale"
        /// The identity adapter's scale and reference: a PNG's file name, or `characterTarget`
        /// (the character's own target, found in the store by the character's name).
        static let identityScale = "Identity scale", identityReference = "Identity reference"
        static let characterTarget = "character target"
    }

    /// Float's own shortest text ("0.6", not 0.6000000238…) reads back to the same Float.
    static func text(_ x: Float) -> String { x == x.rounded() && abs(x) < 1e7 ? String(Int(x)) : String(x) }

    /// The character's fields: its name and the OneActor controls that were in effect.
    static func characterFields(name: String, v: Float, guidance: ClusterGuidance) -> [(String, String)] {
        [(Field.character, name), (Field.v, text(v)), (Field.eta1, text(guidance.eta1)), (Field.eta2, text(guidance.eta2)),
         (Field.steps, "\(guidance.steps.lowerBound + 1):\(guidance.steps.upperBound)"), (Field.subjectMask, guidance.subjectMask ? "on" : "off")]
    }

    /// The parameters of image `index` of `result`.
    static func parameters(_ req: GenerationRequest, _ result: GenerationResult, index: Int, model: String,
                           loras: [(String, Float)], extra: [(String, String)]) -> GenerationParameters {
        var p = GenerationParameters(prompt: req.prompt)
        p.negativePrompt = req.negativePrompt; p.steps = req.steps; p.sampler = SamplerNames.a1111(result.schedulerName)
        p.cfgScale = Double(req.guidanceScale); p.seed = req.seed; p.width = result.width; p.height = result.height
        p.model = model; p.clipSkip = req.clipSkip
        if result.images.count > 1 { p.extra.append(("Batch index", String(index))); p.extra.append(("Batch size", String(result.images.count))) }
        if !loras.isEmpty { p.extra.append((Field.lora, loras.map { "\($0.0):\(text($0.1))" }.joined(separator: "|"))) }
        p.extra += extra
        return p
    }

    /// Writes image `index` of `result` with its parameters to `path` (atomically).
    static func write(_ result: GenerationResult, index: Int, parameters p: GenerationParameters, to path: String) throws {
        try PNGCodec.write(RGBImage(width: result.width, height: result.height, pixels: result.images[index]), to: path,
                           text: [(GenerationParameters.chunkKey, p.text)])
    }
}
