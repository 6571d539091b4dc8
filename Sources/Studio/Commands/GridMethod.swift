// A column of a consistency grid (`troupe grid`): which of a character's tunings draw its
// images. `--methods` names them as `eval` does — `prompt` (the base model), `oneactor`,
// `stage1`/`stage2`/`stage3` (that stage's LoRA), `stages` (the latest stage's), `identity` (the
// identity embedding of the character's target) and `+` combinations such as `stages+oneactor`
// (what `generate --character` samples for a character with both) — or `all`: `prompt`, each
// tuning every listed character has, alone, and all of them together. `--v` columns are
// OneActor at each interpolation weight. Each column samples the way `generate --character`
// does: a stage LoRA merged at the model's `lora_scale` and sampled at its
// `lora_guidance_scale`, OneActor's δ and cluster guidance at the character's settings, the
// identity tokens at the default scale.

import Foundation
import Pipeline

struct GridMethod: Equatable {
    enum Stage: Equatable { case latest, stage(Int) }
    var stage: Stage?
    var oneActor = false
    var identity = false
    /// OneActor's interpolation weight for a `--v` column (nil: the character's setting).
    var v: Float?

    /// The column's name, in `eval`'s spelling (`--v` columns: "v 0.5").
    var label: String {
        if let v { return "v " + GenerationPNG.text(v) }
        var parts: [String] = []
        switch stage {
        case .latest?: parts.append("stages")
        case .stage(let k)?: parts.append("stage\(k)")
        case nil: break
        }
        if oneActor { parts.append("oneactor") }
        if identity { parts.append("identity") }
        return parts.isEmpty ? "prompt" : parts.joined(separator: "+")
    }

    static let names = "prompt, oneactor, stage1, stage2, stage3, stages, identity, their + combinations, or all"
    static let maxColumns = 12

    /// `--methods` text → the columns; `all` is resolved later, per character (`nil` here).
    static func parse(_ text: String) throws -> [GridMethod]? {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if items == ["all"] { return nil }
        guard !items.isEmpty, items.count <= maxColumns, !items.contains("") else {
            throw StudioError.badInput("--methods takes 1…\(maxColumns) comma-separated methods (\(names)), got '\(text)'")
        }
        var out: [GridMethod] = []
        for item in items {
            let m = try method(item)
            guard !out.contains(m) else { throw StudioError.badInput("--methods names \(m.label) twice") }
            out.append(m)
        }
        return out
    }

    private static func method(_ item: String) throws -> GridMethod {
        if item == "prompt" { return GridMethod() }
        var m = GridMethod()
        for part in item.split(separator: "+", omittingEmptySubsequences: false).map(String.init) {
            func once(_ already: Bool) throws {
                if already { throw StudioError.badInput("--methods: '\(item)' names \(part) twice") }
            }
            switch part {
            case "oneactor": try once(m.oneActor); m.oneActor = true
            case "identity": try once(m.identity); m.identity = true
            case "stages", "stage1", "stage2", "stage3":
                if m.stage != nil { throw StudioError.badInput("--methods: '\(item)' names more than one stage LoRA") }
                m.stage = part == "stages" ? .latest : .stage(Int(part.dropFirst(5))!)
            default:
                throw StudioError.badInput("--methods: unknown method '\(part)' in '\(item)'; choose from \(names)")
            }
        }
        return m
    }

    /// `all` for these characters: `prompt`, each tuning every one of them has alone, then the
    /// tunings together when there are two or more.
    static func all(oneActor: Bool, stages: Bool, identity: Bool) -> [GridMethod] {
        let alone = [stages ? GridMethod(stage: .latest) : nil, oneActor ? GridMethod(oneActor: true) : nil,
                     identity ? GridMethod(identity: true) : nil].compactMap { $0 }
        var out = [GridMethod()] + alone
        if alone.count > 1 { out.append(GridMethod(stage: stages ? .latest : nil, oneActor: oneActor, identity: identity)) }
        return out
    }
}
