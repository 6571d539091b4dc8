// The World's judge: a small CNN that predicts every attribute of a 64×64 sprite (identity
// attributes, class noun, pose, expression, background, view). Used to measure identity
// consistency and prompt fidelity, and (pose/expression) as stage-3 training losses.
// SpriteTrunk → one linear head per attribute.

import Foundation

public enum WorldAttribute: String, CaseIterable, Codable, Sendable {
    case characterClass = "class", skin, hairColor = "hair_color", hairStyle = "hair_style", eyeColor = "eye_color"
    case outfitColor = "outfit_color", outfitPattern = "outfit_pattern", accessory, pose, expression, background, view

    public var classes: Int {
        switch self {
        case .characterClass: return WorldClass.allCases.count
        case .skin: return SkinTone.allCases.count
        case .hairColor: return HairColor.allCases.count
        case .hairStyle: return HairStyle.allCases.count
        case .eyeColor: return EyeColor.allCases.count
        case .outfitColor: return OutfitColor.allCases.count
        case .outfitPattern: return OutfitPattern.allCases.count
        case .accessory: return Accessory.allCases.count
        case .pose: return Pose.allCases.count
        case .expression: return Expression.allCases.count
        case .background: return Background.allCases.count
        case .view: return View.allCases.count
        }
    }

    /// The scene's attributes — how and where the character is drawn, not who it is.
    public var isContext: Bool { [.pose, .expression, .background, .view].contains(self) }
    public var isIdentity: Bool { !isContext && self != .characterClass }
    /// The seven attributes that make a character who it is, in declaration order.
    public static let identity = allCases.filter(\.isIdentity)
    /// Pose, expression, background and view: where and how, never who.
    public static let context = allCases.filter(\.isContext)

    public func label(_ id: CharacterIdentity, _ s: SceneContext) -> Int {
        switch self {
        case .characterClass: return id.characterClass.rawValue
        case .skin: return id.skin.rawValue
        case .hairColor: return id.hairColor.rawValue
        case .hairStyle: return id.hairStyle.rawValue
        case .eyeColor: return id.eyeColor.rawValue
        case .outfitColor: return id.outfitColor.rawValue
        case .outfitPattern: return id.outfitPattern.rawValue
        case .accessory: return id.accessory.rawValue
        case .pose: return s.pose.rawValue
        case .expression: return s.expression.rawValue
        case .background: return s.background.rawValue
        case .view: return s.view.rawValue
        }
    }
}

extension CharacterIdentity {
    /// This identity with `a` (the class or an identity attribute) set to value `v` — the
    /// inverse of `WorldAttribute.label`; nil for a context attribute or a value out of range.
    public func setting(_ a: WorldAttribute, to v: Int) -> CharacterIdentity? {
        var out = self
        switch a {
        case .characterClass: guard let x = WorldClass(rawValue: v) else { return nil }; out.characterClass = x
        case .skin: guard let x = SkinTone(rawValue: v) else { return nil }; out.skin = x
        case .hairColor: guard let x = HairColor(rawValue: v) else { return nil }; out.hairColor = x
        case .hairStyle: guard let x = HairStyle(rawValue: v) else { return nil }; out.hairStyle = x
        case .eyeColor: guard let x = EyeColor(rawValue: v) else { return nil }; out.eyeColor = x
        case .outfitColor: guard let x = OutfitColor(rawValue: v) else { return nil }; out.outfitColor = x
        case .outfitPattern: guard let x = OutfitPattern(rawValue: v) else { return nil }; out.outfitPattern = x
        case .accessory: guard let x = Accessory(rawValue: v) else { return nil }; out.accessory = x
        case .pose, .expression, .background, .view: return nil
        }
        return out
    }
}

public final class AttributeClassifier {
    let trunk: SpriteTrunk
    let heads: [WorldAttribute: Linear]
    public let reader: WeightReader

    public init(weights reader: WeightReader) throws {
        self.reader = reader
        let w = reader.scope("")
        trunk = try SpriteTrunk(w)
        var h: [WorldAttribute: Linear] = [:]
        for a in WorldAttribute.allCases { h[a] = try Linear(w("head")(a.rawValue), in: SpriteTrunk.featureWidth, out: a.classes) }
        heads = h
    }

    /// Fresh weights (deterministic for a seed).
    public convenience init(seed: UInt64) throws { try self.init(weights: WeightReader(randomSeed: seed)) }

    /// Every trainable tensor, by name (for the optimiser and for saving).
    public var namedParameters: [(String, Tensor)] { reader.namedParameters(extra: trunk.normParameters) }

    /// Images [B, 3, 64, 64] in [−1, 1] → logits per attribute.
    public func callAsFunction(_ x: Tensor) -> [WorldAttribute: Tensor] {
        let f = trunk(x)
        var out: [WorldAttribute: Tensor] = [:]
        for (a, head) in heads { out[a] = head(f) }
        return out
    }

    /// The judge as a training loss: the mean over `attributes` of the cross-entropy of its
    /// logits on `images` [B, 3, 64, 64] against each of `samples`' true labels (one sample per
    /// row); differentiable in `images`.
    public func meanCrossEntropy(_ images: Tensor, samples: [WorldSample], attributes: [WorldAttribute]) -> Tensor {
        Self.meanCrossEntropy(logits: callAsFunction(images), samples: samples, attributes: attributes)
    }

    /// The same from logits already computed (several attribute groups from one forward pass).
    public static func meanCrossEntropy(logits: [WorldAttribute: Tensor], samples: [WorldSample], attributes: [WorldAttribute]) -> Tensor {
        var ce = Tensor(scalar: 0)
        for a in attributes { ce = ce + logits[a]!.crossEntropy(samples.map { a.label($0.identity, $0.scene) }) }
        return ce * (1 / Float(attributes.count))
    }

    /// The activations after the stem and after each downsampling stage (64², 32², 16², 8², 4²):
    /// the feature maps of a perceptual loss (LPIPS-style, with this World-trained network in
    /// place of an ImageNet one).
    public func features(_ x: Tensor) -> [Tensor] { trunk.featureMaps(x) }

    /// Predicted class per attribute for each image.
    public func predict(_ x: Tensor) -> [WorldAttribute: [Int]] {
        GradMode.noGrad {
            callAsFunction(x).mapValues { logits in
                let c = logits.shape[1], p = logits.contiguous().dataPointer
                return (0..<logits.shape[0]).map { r in (0..<c).max { p[r * c + $0] < p[r * c + $1] }! }
            }
        }
    }

    public func save(to path: String, metadata: [String: String]) throws {
        try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: namedParameters), to: path, metadata: metadata)
    }
}

/// World sprites as a model batch: [B, 3, 64, 64] in [−1, 1].
public enum WorldBatch {
    public static func images(_ world: World, _ samples: [WorldSample]) -> Tensor {
        tensor(rgb8: samples.map { world.image($0) }, size: World.imageSize)
    }

    /// RGB8 HWC images (renders or generations), size × size each → [B, 3, size, size] in [−1, 1].
    public static func tensor(rgb8 images: [[UInt8]], size n: Int) -> Tensor {
        let t = Tensor(uninitialized: [images.count, 3, n, n])
        let p = t.dataPointer
        for (b, px) in images.enumerated() {
            for c in 0..<3 { for i in 0..<(n * n) { p[((b * 3) + c) * n * n + i] = Float(px[i * 3 + c]) / 127.5 - 1 } }
        }
        return t
    }
}
