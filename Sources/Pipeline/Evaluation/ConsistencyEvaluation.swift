// Character-consistency evaluation with a World judge. For each character (a prompt naming a
// class and, optionally, identity words) and each context prompt, a method generates K images;
// the judge reads every attribute off every image.
//   prompt fidelity      = mean over images of the fraction of the prompt's context attributes
//                          (pose, expression, background, view named in its words) the judge sees
//   identity consistency = mean over each character's image pairs of the fraction of the 7
//                          identity attributes (skin, hair colour/style, eyes, outfit colour/
//                          pattern, accessory) on which the two images agree
// Chance level for identity consistency is Σ pᵢ² per attribute (≈ 0.15–0.2 in the World): a
// base model that drifts from seed to seed scores near it; a consistent method near 1.

import Foundation

public struct EvalCharacter: Codable, Sendable, Equatable {
    public var name: String
    public var prompt: String
    public init(name: String, prompt: String) { self.name = name; self.prompt = prompt }
}

public struct EvalPrompt: Sendable, Equatable {
    /// Text with `{}` where the character's prompt goes.
    public let template: String
    /// Context attributes the words name (attribute → class index).
    public let expected: [WorldAttribute: Int]

    public init(template: String) throws {
        guard template.contains("{}") else { throw EvalError.badPrompt(template, "has no {} for the character") }
        self.template = template
        expected = EvalProtocol.contextAttributes(in: template)
    }

    public func text(for c: EvalCharacter) -> String { template.replacingOccurrences(of: "{}", with: c.prompt) }
}

public enum EvalError: Error, CustomStringConvertible {
    case badPrompt(String, String)
    case badCharacters(String)
    public var description: String {
        switch self {
        case let .badPrompt(p, why): return "prompt '\(p)' \(why)"
        case .badCharacters(let s): return s
        }
    }
}

/// The built-in protocol: fixed characters, prompts and seeds, so numbers compare from run to run.
public enum EvalProtocol {
    /// Characters as an artist writes them: a class and one identity word or two, the way
    /// ~20% of World captions name identity (the rest stays to the model, and drifts).
    public static let characters: [EvalCharacter] = [
        EvalCharacter(name: "knight", prompt: "a knight with red hair"),
        EvalCharacter(name: "wizard", prompt: "a wizard with a purple outfit"),
        EvalCharacter(name: "robot", prompt: "a robot with glasses"),
        EvalCharacter(name: "pirate", prompt: "a pirate with blonde hair"),
        EvalCharacter(name: "chef", prompt: "a chef with a scarf"),
        EvalCharacter(name: "astronaut", prompt: "an astronaut with blue eyes"),
    ]

    public static let prompts: [String] = [
        "{}, standing, calm, under a blue sky, front view",
        "{} waving, smiling, in a forest, front view",
        "{} with arms raised, surprised, on a beach, front view",
        "{} walking, sad, at night, side view",
        "{} pointing, angry, in a castle, side view",
        "{}, standing, smiling, in the desert, side view",
    ]

    public static let seed: UInt64 = 4242

    /// Context attributes named by World words in `text` (longest phrases first, so "front
    /// view" is not read as something shorter).
    public static func contextAttributes(in text: String) -> [WorldAttribute: Int] {
        let t = text.lowercased()
        var out: [WorldAttribute: Int] = [:]
        func find<T: CaseIterable & RawRepresentable>(_ attr: WorldAttribute, _ type: T.Type, _ word: (T) -> String) where T.RawValue == Int {
            let hits = T.allCases.filter { t.contains(word($0).lowercased()) }
            if let best = hits.max(by: { word($0).count < word($1).count }) { out[attr] = best.rawValue }
        }
        find(.pose, Pose.self) { $0.word }
        find(.expression, Expression.self) { $0.word }
        find(.background, Background.self) { $0.word }
        find(.view, View.self) { $0.word }
        return out
    }
}

public struct MethodScores: Sendable {
    public var identityConsistency: Double
    public var promptFidelity: Double
    public var images: Int
    /// Pairwise agreement per identity attribute, and accuracy per context attribute.
    public var perAttribute: [String: Double]
}

public struct ConsistencyEvaluator {
    public let judge: AttributeClassifier
    public init(judge: AttributeClassifier) { self.judge = judge }

    /// One generated image: which character, which prompt, the RGB8 pixels (64×64).
    public struct Sample { public let character: Int; public let prompt: EvalPrompt; public let pixels: [UInt8]
        public init(character: Int, prompt: EvalPrompt, pixels: [UInt8]) { self.character = character; self.prompt = prompt; self.pixels = pixels }
    }

    public func score(_ samples: [Sample], size: Int = 64) -> MethodScores {
        var predictions: [[WorldAttribute: Int]] = []
        for chunk in stride(from: 0, to: samples.count, by: 64) {
            let part = samples[chunk..<min(samples.count, chunk + 64)]
            let pred = judge.predict(WorldBatch.tensor(rgb8: part.map(\.pixels), size: size))
            for b in 0..<part.count { predictions.append(pred.mapValues { $0[b] }) }
        }
        return ConsistencyEvaluator.score(samples, predictions: predictions)
    }

    /// The metrics from the judge's reading of each sample (one dictionary per sample).
    public static func score(_ samples: [Sample], predictions: [[WorldAttribute: Int]]) -> MethodScores {
        precondition(samples.count == predictions.count, "one prediction per sample")
        // Prompt fidelity.
        var fidelity = 0.0, contextHits: [WorldAttribute: (Int, Int)] = [:]
        for (s, pred) in zip(samples, predictions) {
            guard !s.prompt.expected.isEmpty else { fidelity += 1; continue }
            var hit = 0
            for (a, want) in s.prompt.expected {
                let ok = pred[a] == want
                if ok { hit += 1 }
                let (h, n) = contextHits[a] ?? (0, 0)
                contextHits[a] = (h + (ok ? 1 : 0), n + 1)
            }
            fidelity += Double(hit) / Double(s.prompt.expected.count)
        }
        // Identity consistency, pairwise within each character.
        let identity = WorldAttribute.allCases.filter(\.isIdentity)
        var agree: [WorldAttribute: Int] = [:], pairs = 0
        for c in Set(samples.map(\.character)) {
            let idx = samples.indices.filter { samples[$0].character == c }
            for i in 0..<idx.count { for j in (i + 1)..<max(i + 1, idx.count) {
                pairs += 1
                for a in identity where predictions[idx[i]][a] == predictions[idx[j]][a] { agree[a, default: 0] += 1 }
            } }
        }
        var per: [String: Double] = [:]
        for a in identity { per["identity_" + a.rawValue] = pairs > 0 ? Double(agree[a] ?? 0) / Double(pairs) : 0 }
        for (a, (h, n)) in contextHits { per["context_" + a.rawValue] = Double(h) / Double(n) }
        let consistency = identity.map { per["identity_" + $0.rawValue]! }.reduce(0, +) / Double(identity.count)
        return MethodScores(identityConsistency: consistency, promptFidelity: samples.isEmpty ? 0 : fidelity / Double(samples.count),
                            images: samples.count, perAttribute: per)
    }
}
