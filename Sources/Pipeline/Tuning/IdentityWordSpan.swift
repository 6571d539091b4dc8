// OneActor's offset kept to the directions the model's own identity words take (an option of
// `tune oneactor`, `--offset-span words`). At the summary site δ is one vector added to the end
// and padding tokens, which also carry the prompt's expression and pose words, and a free δ is
// as large as those tokens (docs/oneactor.md): it drowns them. Spelling the character out in
// words (the prompt-engineering baseline) moves identity as far with no such cost, because the
// encoder writes each identity phrase into the summary along its own direction. So the span:
// for every identity phrase of the World's vocabulary (each value of the seven identity
// attributes in one phrasing, the words troupe-mini's captions use), the shift of the mean
// end/padding token when the phrase is appended to the character's prompt; their orthonormal
// basis Q [k, d] (Gram–Schmidt), and δ' = δ·Qᵀ·Q, in training and sampling alike.

import Foundation

public enum OffsetSpan: String, Codable, Sendable, CaseIterable {
    /// δ anywhere in the text width (the paper).
    case free
    /// δ within the span of the model's identity-word directions.
    case words

    /// "free or words", for messages.
    public static var choices: String { allCases.map(\.rawValue).joined(separator: " or ") }
}

public enum IdentityWordSpan {
    /// One phrase per value of each identity attribute.
    public static var phrases: [String] {
        HairColor.allCases.map { "with \($0.word) hair" }
            + HairStyle.allCases.map { $0 == .bald ? "with a bald head" : $0 == .ponytail ? "with a ponytail" : "with \($0.word) hair" }
            + EyeColor.allCases.map { "with \($0.word) eyes" }
            + SkinTone.allCases.map { "with \($0.word) skin" }
            + OutfitColor.allCases.map { "in \(IdentityPhrases.article($0.word)) \($0.word) outfit" }
            + OutfitPattern.allCases.map { "in \(IdentityPhrases.article($0.word)) \($0.word) outfit" }
            + Accessory.allCases.filter { $0 != .none }.map { "wearing \($0.word)" }
    }

    /// The orthonormal basis [k, d] of the phrases' summary shifts on `prompt` (directions that
    /// add less than 1e-3 of their length to the span are dropped).
    public static func basis(prompt: String, pipeline: StableDiffusionPipeline) -> Tensor {
        let tok = pipeline.tokenizer
        func summary(_ text: String) -> [Float] {
            let ids = tok.encode(text)
            let c = GradMode.noGrad { pipeline.textEncoder([ids]) }
            let end = 1 + min(tok.tokenIDs(text, limit: tok.maxLength - 2).count, tok.maxLength - 2)
            return c.sliced(1, end..<tok.maxLength).mean(axes: [0, 1]).contiguous().toArray()
        }
        let carrier = summary(prompt)
        var q: [[Float]] = []
        for p in phrases {
            var v = zip(summary(prompt + " " + p), carrier).map { $0 - $1 }
            let length = norm(v)
            guard length > 0 else { continue }
            for u in q {
                let dot = zip(v, u).reduce(0) { $0 + $1.0 * $1.1 }
                for i in v.indices { v[i] -= dot * u[i] }
            }
            let rest = norm(v)
            if rest > 1e-3 * length { q.append(v.map { $0 / rest }) }
        }
        let d = carrier.count
        return Tensor(q.flatMap { $0 }, shape: [q.count, d])
    }

    /// δ [B, d] projected onto the span of `basis` [k, d].
    public static func project(_ delta: Tensor, onto basis: Tensor) -> Tensor {
        delta.matmul(basis.transposed(0, 1).contiguous()).matmul(basis)
    }

    static func norm(_ v: [Float]) -> Float { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
