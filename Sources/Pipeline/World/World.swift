// The procedural character World (design §5): sample i of a world with seed s is a random
// identity and scene drawn from SplitMix(s, i), its 64×64 sprite and a caption. Captions
// name the class and the scene (pose, expression, background, view) and mostly not the
// identity: ≈ 80% name no identity attribute, the rest one or two, and ≈ 10% are empty (for
// classifier-free guidance). A base model trained on it therefore drifts in identity from
// seed to seed, which is the problem Troupe's tuning solves.

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

    /// The sprite of a sample, RGB8 HWC.
    public func image(_ s: WorldSample) -> [UInt8] { World.render(s.identity, s.scene) }

    public static func render(_ id: CharacterIdentity, _ scene: SceneContext) -> [UInt8] { SpriteRenderer.render(id, scene) }

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
    static func caption(_ id: CharacterIdentity, _ s: SceneContext, _ r: inout SplitMixRandom) -> (String, [String]) {
        let roll = r.nextFloat()
        if roll < 0.10 { return ("", []) }
        // Identity words for ≈ 20% of the captioned samples (one or two attributes).
        var named: [(String, String)] = []
        if roll >= 0.82 {
            let options: [(String, String)] = [
                ("hair_color", "\(id.hairColor.word) hair"), ("hair_style", id.hairStyle == .bald ? "a bald head" : "\(id.hairStyle.word) hair"),
                ("eye_color", "\(id.eyeColor.word) eyes"), ("outfit_color", "a \(id.outfitColor.word) outfit"),
                ("outfit_pattern", "a \(id.outfitPattern.word) outfit"), ("skin", "\(id.skin.word) skin"), ("accessory", id.accessory.word),
            ]
            let count = roll >= 0.95 ? 2 : 1
            var pool = options
            for _ in 0..<count { named.append(pool.remove(at: Int(r.next() % UInt64(pool.count)))) }
        }
        let cls = id.characterClass.word
        func a(_ word: String) -> String { ("aeiou".contains(word.first!) ? "an " : "a ") + word }
        let withPart = named.isEmpty ? "" : " with " + named.map(\.1).joined(separator: " and ")
        let templates = [
            "\(a(cls))\(withPart), \(s.pose.word), \(s.expression.word), \(s.background.word), \(s.view.word)",
            "\(s.view.word) of \(a(s.expression.word)) \(cls)\(withPart) \(s.pose.word) \(s.background.word)",
            "\(a(s.expression.word)) \(cls)\(withPart) \(s.pose.word) \(s.background.word), \(s.view.word)",
            "pixel art of \(a(cls))\(withPart), \(s.expression.word), \(s.pose.word), \(s.background.word), \(s.view.word)",
        ]
        return (templates[Int(r.next() % UInt64(templates.count))], named.map(\.0))
    }
}
