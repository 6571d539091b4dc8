// The procedural character World (design §5): sample i of a world with seed s is a random
// identity and scene drawn from SplitMix(s, i), its 64×64 sprite and a caption. Captions
// name the class and the scene (pose, expression, background, view); ≈ 45% also name one to
// seven identity attributes in the phrasings artists use (IdentityPhrases), the rest none, and
// ≈ 10% are empty (for classifier-free guidance). A base model trained on it follows identity
// words but drifts, from seed to seed, in every attribute a prompt leaves out: the problem
// Troupe's tuning solves.

public struct WorldSample: Codable, Sendable {
    public let index: Int
    public let identity: CharacterIdentity
    public let scene: SceneContext
    public let caption: String
    /// Which identity attributes the caption names.
    public let namedAttributes: [String]
}

public struct World: Sendable {
    public let seed: UInt64
    public static let imageSize = SpriteRenderer.size

    public init(seed: UInt64) { self.seed = seed }

    private func rng(_ index: Int, stream: UInt64) -> SplitMixRandom {
        SplitMixRandom(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9 &+ stream)
    }

    static func pick<T: CaseIterable>(_ r: inout SplitMixRandom) -> T where T.AllCases: RandomAccessCollection, T.AllCases.Index == Int {
        let all = T.allCases
        return all[all.startIndex + Int(r.next() % UInt64(all.count))]
    }

    public static func randomIdentity(_ r: inout SplitMixRandom) -> CharacterIdentity {
        CharacterIdentity(characterClass: pick(&r), skin: pick(&r), hairColor: pick(&r), hairStyle: pick(&r), eyeColor: pick(&r),
                          outfitColor: pick(&r), outfitPattern: pick(&r), accessory: pick(&r))
    }

    public static func randomScene(_ r: inout SplitMixRandom) -> SceneContext {
        SceneContext(pose: pick(&r), expression: pick(&r), background: pick(&r), view: pick(&r))
    }

    /// Sample `index`: identity, scene and caption (deterministic).
    public func sample(_ index: Int) -> WorldSample {
        var r = rng(index, stream: 1)
        let id = World.randomIdentity(&r), scene = World.randomScene(&r)
        let (caption, named) = Captions.caption(id, scene, &r)
        return WorldSample(index: index, identity: id, scene: scene, caption: caption, namedAttributes: named)
    }

    /// Sample `index`'s caption as it reads for another identity: the same random choices
    /// (whether and which attributes it names, their phrasing, the template) with `identity`'s
    /// words. Only attribute values change the words — never which are nameable — so a colour
    /// swapped in changes exactly that colour's words (BaseTrainingConfig.colorContrastWeight).
    /// Nil when `identity` has another class or another set of nameable attributes.
    public func caption(_ index: Int, as identity: CharacterIdentity) -> String? {
        var r = rng(index, stream: 1)
        let own = World.randomIdentity(&r), scene = World.randomScene(&r)
        guard identity.characterClass == own.characterClass,
              IdentityPhrases.nameable(identity) == IdentityPhrases.nameable(own) else { return nil }
        return Captions.caption(identity, scene, &r).0
    }

    /// The sprite of a sample, RGB8 HWC.
    public func image(_ s: WorldSample) -> [UInt8] { World.render(s.identity, s.scene) }

    public static func render(_ id: CharacterIdentity, _ scene: SceneContext) -> [UInt8] { SpriteRenderer.render(id, scene) }

    /// The pixels (row-major, imageSize²) that show the small identity details `s`'s caption
    /// names — its accessory and its eye colour: where the render changes when the accessory is
    /// taken off or the eyes take another colour. A few pixels each (two 2.6-pixel earrings,
    /// 2-pixel eyes), so ε-MSE, which weighs a pixel by its area, barely rewards drawing them
    /// (BaseTrainingConfig.detailLossWeight). Empty when the caption names neither.
    public static func namedDetailPixels(_ s: WorldSample) -> [Bool] {
        detailPixels(s.identity, s.scene, accessory: s.namedAttributes.contains(WorldAttribute.accessory.rawValue),
                     eyes: s.namedAttributes.contains(WorldAttribute.eyeColor.rawValue))
    }

    /// The pixels that show `s`'s accessory (if it wears one) and its eye colour, named in the
    /// caption or not: what a decoder must keep for the judge to read them
    /// (DecoderTuningConfig.detailWeight).
    public static func detailPixels(_ s: WorldSample) -> [Bool] {
        detailPixels(s.identity, s.scene, accessory: true, eyes: true)
    }

    static func detailPixels(_ identity: CharacterIdentity, _ scene: SceneContext, accessory: Bool, eyes: Bool) -> [Bool] {
        var variants: [CharacterIdentity] = []
        if accessory, identity.accessory != .none {
            var id = identity; id.accessory = .none; variants.append(id)
        }
        if eyes {
            var id = identity
            id.eyeColor = EyeColor(rawValue: (id.eyeColor.rawValue + 1) % EyeColor.allCases.count)!
            variants.append(id)
        }
        guard !variants.isEmpty else { return [] }
        return changedPixels(identity, scene, variants: variants)
    }

    /// The pixels (row-major, imageSize²) where any of `variants` renders differently from
    /// `identity` in `scene`: where the attributes they change show.
    public static func changedPixels(_ identity: CharacterIdentity, _ scene: SceneContext, variants: [CharacterIdentity]) -> [Bool] {
        let image = render(identity, scene)
        var mask = [Bool](repeating: false, count: imageSize * imageSize)
        for v in variants {
            let other = render(v, scene)
            for i in mask.indices where !mask[i] {
                mask[i] = image[3 * i] != other[3 * i] || image[3 * i + 1] != other[3 * i + 1] || image[3 * i + 2] != other[3 * i + 2]
            }
        }
        return mask
    }

    /// The pixel rectangle [x0, x1) × [y0, y1) that holds every face feature (eyes, brows,
    /// cheeks, mouth) of every render.
    public static var faceRegion: (x0: Int, y0: Int, x1: Int, y1: Int) { SpriteRenderer.faceBox }

    /// Every rectangle the expression draws in: the face and the emote balloon above-left of it.
    public static var expressionRegions: [(x0: Int, y0: Int, x1: Int, y1: Int)] { [SpriteRenderer.faceBox, SpriteRenderer.balloonBox] }
}

extension World {
    /// `caption` with its expression word `from` replaced by `to`'s (and "a"/"an" before it
    /// fixed): the same scene described with another expression, for contrasting captions.
    public static func caption(_ caption: String, replacing from: Expression, with to: Expression) -> String {
        let article = "aeiou".contains(to.word.first!) ? "an" : "a"
        var out = caption.replacingOccurrences(of: "\\b(a|an) \(from.word)\\b", with: "\(article) \(to.word)", options: .regularExpression)
        out = out.replacingOccurrences(of: "\\b\(from.word)\\b", with: to.word, options: .regularExpression)
        return out
    }
}

enum Captions {
    /// How many identity attributes a naming caption names (1…7), by weight: mostly one to
    /// three, as artists describe a character, sometimes all of them, as a prompt engineer does.
    static let countWeights: [Float] = [30, 25, 18, 11, 7, 5, 4]

    static func caption(_ id: CharacterIdentity, _ s: SceneContext, _ r: inout SplitMixRandom) -> (String, [String]) {
        let roll = r.nextFloat()
        if roll < 0.10 { return ("", []) }
        // Identity words in ≈ 45% of all captions; the other 45% (and the 10% empty ones) name
        // none, so an attribute a prompt leaves out still drifts from seed to seed.
        var named: [WorldAttribute] = []
        if roll >= 0.55 {
            var pool = IdentityPhrases.nameable(id)
            var pick = r.nextFloat() * countWeights.reduce(0, +), count = countWeights.count
            for (i, w) in countWeights.enumerated() { if pick < w { count = i + 1; break }; pick -= w }
            for _ in 0..<min(count, pool.count) { named.append(pool.remove(at: Int(r.next() % UInt64(pool.count)))) }
        }
        let words = IdentityPhrases.describe(id, Set(named), &r)
        let cls = id.characterClass.word
        let subject = IdentityPhrases.subject(cls, before: words.before, after: words.after)
        let noun = (words.before + [cls]).joined(separator: " ")
        let trailing = words.after.isEmpty ? "" : " " + words.after.joined(separator: ", ")
        func a(_ word: String) -> String { ("aeiou".contains(word.first!) ? "an " : "a ") + word }
        let templates = [
            "\(subject), \(s.pose.word), \(s.expression.word), \(s.background.word), \(s.view.word)",
            "\(s.view.word) of \(a(s.expression.word)) \(noun)\(trailing) \(s.pose.word) \(s.background.word)",
            "\(a(s.expression.word)) \(noun)\(trailing) \(s.pose.word) \(s.background.word), \(s.view.word)",
            "pixel art of \(subject), \(s.expression.word), \(s.pose.word), \(s.background.word), \(s.view.word)",
        ]
        let order = WorldAttribute.allCases
        return (templates[Int(r.next() % UInt64(templates.count))], order.filter(named.contains).map(\.rawValue))
    }
}
