// Character-consistency evaluation with a World judge. For each character (a prompt naming a
// class and, optionally, identity words) and each context prompt, a method generates K images;
// the judge reads every attribute off every image.
//   prompt fidelity      = mean over images of the fraction of the prompt's context attributes
//                          (pose, expression, background, view named in its words) the judge sees
//   identity consistency = mean over each character's image pairs of the fraction of the 7
//                          identity attributes (skin, hair colour/style, eyes, outfit colour/
//                          pattern, accessory) on which the two images agree
//   identity fidelity    = over images whose character prompt names identity attributes
//                          (IdentityPhrases), the fraction of those the judge sees
//   unnamed consistency  = identity consistency over only the attributes a character's prompt
//                          leaves out: what the model must keep by itself
// Chance level for identity consistency is Σ pᵢ² per attribute (≈ 0.15–0.2 in the World): a
// base model that drifts from seed to seed scores near it; a consistent method near 1.

import Foundation

public struct EvalCharacter: Codable, Sendable, Equatable {
    public var name: String
    public var prompt: String
    /// Where OneActor's offset goes (default: the class word of the prompt).
    public var baseWord: String?
    public init(name: String, prompt: String, baseWord: String? = nil) { self.name = name; self.prompt = prompt; self.baseWord = baseWord }

    enum CodingKeys: String, CodingKey { case name, prompt, baseWord = "base_word" }

    /// Identity attributes the prompt names (value index by attribute).
    public var namedIdentity: [WorldAttribute: Int] { IdentityPhrases.named(in: prompt).filter { $0.key.isIdentity } }

    /// A whole identity for this character: what the prompt names (class included), the rest
    /// drawn from a hash of the name, so it is fixed per character. Hair colour is not drawn
    /// onto a bald head and the accessory is never "none" (both would be unnameable).
    public var fullIdentity: CharacterIdentity {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        var r = SplitMixRandom(seed: h)
        var id = World.randomIdentity(&r)
        let named = IdentityPhrases.named(in: prompt)
        if named[.hairStyle] == nil, id.hairStyle == .bald { id.hairStyle = .short }
        if named[.accessory] == nil, id.accessory == .none { id.accessory = .scarf }
        for (a, v) in named { id = id.setting(a, to: v) ?? id }
        return id
    }

    /// The prompt-engineering baseline: the same character with every identity attribute
    /// spelled out.
    public var spelledOut: EvalCharacter { EvalCharacter(name: name, prompt: IdentityPhrases.fullPrompt(fullIdentity), baseWord: baseWord) }
}

/// The methods `troupe eval` compares (a closed set).
public enum EvalMethod: String, CaseIterable, Sendable {
    /// The character's prompt as written.
    case prompt
    /// The character's prompt with all seven identity attributes spelled out: what describing
    /// the character achieves, the baseline tuning has to beat.
    case promptEngineering = "prompt-engineering"
    /// OneActor tuned on the character's own generation (target + 10 auxiliaries, 200 steps),
    /// sampled with v = 0.8 and cluster guidance.
    case oneactor
    /// The stage-1 LoRA trained on four accepted references of the character (World renders of
    /// its identity in other scenes, through the VAE round trip, as an artist's accepted
    /// generations would look).
    case stage1
    /// Stages 1 and 2 (identity loss, prior preservation) on the same references.
    case stage2
    /// Stages 1, 2 and 3 (the training judge's pose/expression term).
    case stages
    /// The identity adapter, zero-shot: the character's target (its prompt generated at the
    /// seed OneActor's target uses) as the identity reference, nothing tuned.
    case identity
    /// OneActor and the identity adapter together, on the same target.
    case oneactorIdentity = "oneactor+identity"
    /// Stages 1–3 trained with the identity embedding fed to the UNet (TuningIdentity), then
    /// sampled with the identity adapter reading the first accepted reference.
    case stagesIdentity = "stages+identity"
    /// Stages 1–3 and OneActor together, as `generate --character` samples a character that
    /// has both: OneActor tuned on the base model with the first accepted reference as its
    /// target (the product's order: OneActor first, then the stages from the accepted images),
    /// sampled through the stage LoRA with the offset and cluster guidance at the stage guidance.
    case stagesOneactor = "stages+oneactor"
    /// The World's renders of one fixed identity per character through the VAE round trip:
    /// the consistency the judge allows.
    case reference
    /// The judge on World renders and their VAE round trips (no generation).
    case reconstruction

    /// Whether eval also generates the base word alone under this method (class_consistency):
    /// the tuned methods, which could make every cowboy this one, and `prompt`, the untuned
    /// model's value to compare with. (The identity adapter is told the character by its
    /// reference image whatever the prompt says, so "drift" means nothing there.)
    public var measuresClassDrift: Bool { [.prompt, .oneactor, .stage1, .stage2, .stages].contains(self) }

    /// The stages the method tunes (nil: no LoRA).
    public var tunedStages: Int? {
        switch self {
        case .stage1: return 1
        case .stage2: return 2
        case .stages, .stagesIdentity, .stagesOneactor: return 3
        default: return nil
        }
    }

    /// Whether the method samples with the identity adapter.
    public var usesIdentityAdapter: Bool { [.identity, .oneactorIdentity, .stagesIdentity].contains(self) }

    /// Whether the method samples with a OneActor offset (and so takes `--v`).
    public var usesOneActor: Bool { [.oneactor, .oneactorIdentity, .stagesOneactor].contains(self) }
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
    /// Characters as an artist writes them: a class and one identity word (the rest stays to
    /// the model, and drifts).
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
    /// Fraction of the prompt-named identity attributes the judge sees (nil: no prompt names any).
    public var identityFidelity: Double?
    /// Identity consistency over the attributes each character's prompt does not name (nil: it names all).
    public var unnamedConsistency: Double?
    public var images: Int
    /// Pairwise agreement per identity attribute, and accuracy per context attribute.
    public var perAttribute: [String: Double]
    /// The same metrics over each character's samples alone (by `Sample.character`): a
    /// method's mean can hide one character it breaks. Empty for a single character.
    public var perCharacter: [Int: MethodScores] = [:]
    /// Per prompt template: identity consistency over the pairs of one character's images that
    /// this prompt's image is in, the other image from another prompt (which scenes pull the
    /// character away from itself), over the pairs with both images from this prompt (seed-to-
    /// seed drift alone), and the prompt's own fidelity. Empty for a single prompt.
    public var perPrompt: [String: PromptScores] = [:]
    /// Identity consistency of the base word alone ("a cowboy") under the method's tuning, over
    /// the same prompts and seeds (nil: not measured). Near the untuned model's value: the class
    /// still means any cowboy; near the method's own identity consistency: every cowboy became
    /// this one.
    public var classConsistency: Double?
}

public struct PromptScores: Sendable, Equatable {
    public var crossPromptConsistency: Double
    /// Agreement of one character's images under this prompt with each other (other seeds):
    /// well above the cross-prompt value, the prompts pull the character apart, not the seeds.
    public var withinPromptConsistency: Double
    public var promptFidelity: Double
}

public struct ConsistencyEvaluator {
    public let judge: AttributeClassifier
    public init(judge: AttributeClassifier) { self.judge = judge }

    /// One generated image: which character, which prompt, the RGB8 pixels (64×64), and the
    /// identity attributes the character's prompt names.
    public struct Sample {
        public let character: Int; public let prompt: EvalPrompt; public let pixels: [UInt8]
        public let namedIdentity: [WorldAttribute: Int]
        public init(character: Int, prompt: EvalPrompt, pixels: [UInt8], namedIdentity: [WorldAttribute: Int] = [:]) {
            self.character = character; self.prompt = prompt; self.pixels = pixels; self.namedIdentity = namedIdentity
        }
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
        var scores = pooled(samples, predictions: predictions)
        let characters = Set(samples.map(\.character))
        if characters.count > 1 {
            for c in characters {
                let idx = samples.indices.filter { samples[$0].character == c }
                scores.perCharacter[c] = pooled(idx.map { samples[$0] }, predictions: idx.map { predictions[$0] })
            }
        }
        let templates = Set(samples.map(\.prompt.template))
        if templates.count > 1 {
            let identity = WorldAttribute.identity
            var across: [String: (Int, Int)] = [:], within: [String: (Int, Int)] = [:]
            for (i, j) in characterPairs(samples) {
                let (a, b) = (samples[i].prompt.template, samples[j].prompt.template)
                let same = identity.filter { predictions[i][$0] == predictions[j][$0] }.count
                if a == b { let (h, n) = within[a] ?? (0, 0); within[a] = (h + same, n + identity.count); continue }
                for t in [a, b] { let (h, n) = across[t] ?? (0, 0); across[t] = (h + same, n + identity.count) }
            }
            func fraction(_ c: (Int, Int)?) -> Double { c.map { $0.1 > 0 ? Double($0.0) / Double($0.1) : 0 } ?? 0 }
            for t in templates {
                let idx = samples.indices.filter { samples[$0].prompt.template == t }
                scores.perPrompt[t] = PromptScores(crossPromptConsistency: fraction(across[t]), withinPromptConsistency: fraction(within[t]),
                                                   promptFidelity: pooled(idx.map { samples[$0] }, predictions: idx.map { predictions[$0] }).promptFidelity)
            }
        }
        return scores
    }

    /// Every pair (i, j), i < j, of indices into `samples` of the same character: the pairs
    /// identity consistency compares.
    static func characterPairs(_ samples: [Sample]) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        for c in Set(samples.map(\.character)) {
            let idx = samples.indices.filter { samples[$0].character == c }
            for i in 0..<idx.count { for j in (i + 1)..<max(i + 1, idx.count) { out.append((idx[i], idx[j])) } }
        }
        return out
    }

    /// The metrics over `samples` taken together.
    static func pooled(_ samples: [Sample], predictions: [[WorldAttribute: Int]]) -> MethodScores {
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
        // Identity fidelity: the named attributes the judge sees.
        var namedHits: [WorldAttribute: (Int, Int)] = [:]
        for (s, pred) in zip(samples, predictions) {
            for (a, want) in s.namedIdentity {
                let (h, n) = namedHits[a] ?? (0, 0)
                namedHits[a] = (h + (pred[a] == want ? 1 : 0), n + 1)
            }
        }
        // Identity consistency, pairwise within each character; also over only the attributes
        // the character's prompt leaves out.
        let identity = WorldAttribute.identity
        var agree: [WorldAttribute: Int] = [:], pairs = 0
        var unnamedAgree = 0, unnamedTotal = 0
        for (i, j) in characterPairs(samples) {
            pairs += 1
            for a in identity {
                let same = predictions[i][a] == predictions[j][a]
                if same { agree[a, default: 0] += 1 }
                if samples[i].namedIdentity[a] == nil { unnamedTotal += 1; if same { unnamedAgree += 1 } }
            }
        }
        var per: [String: Double] = [:]
        for a in identity { per["identity_" + a.rawValue] = pairs > 0 ? Double(agree[a] ?? 0) / Double(pairs) : 0 }
        for (a, (h, n)) in contextHits { per["context_" + a.rawValue] = Double(h) / Double(n) }
        for (a, (h, n)) in namedHits { per["fidelity_" + a.rawValue] = Double(h) / Double(n) }
        let consistency = identity.map { per["identity_" + $0.rawValue]! }.reduce(0, +) / Double(identity.count)
        let named = namedHits.values.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
        return MethodScores(identityConsistency: consistency, promptFidelity: samples.isEmpty ? 0 : fidelity / Double(samples.count),
                            identityFidelity: named.1 > 0 ? Double(named.0) / Double(named.1) : nil,
                            unnamedConsistency: unnamedTotal > 0 ? Double(unnamedAgree) / Double(unnamedTotal) : nil,
                            images: samples.count, perAttribute: per)
    }
}
