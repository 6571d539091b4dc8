// The character World's vocabulary (design §5): identity attributes that must stay constant
// for one character, the class noun that shapes its silhouette, and the context attributes
// prompts change. Every value has the word captions use for it.

public enum WorldClass: Int, CaseIterable, Codable, Sendable {
    case knight, wizard, robot, pirate, astronaut, ninja, chef, cowboy
    public var word: String { ["knight", "wizard", "robot", "pirate", "astronaut", "ninja", "chef", "cowboy"][rawValue] }
}

public enum SkinTone: Int, CaseIterable, Codable, Sendable {
    case porcelain, light, tan, olive, brown, dark
    public var word: String { ["porcelain", "light", "tan", "olive", "brown", "dark"][rawValue] }
    var rgb: RGB { [RGB(252, 226, 210), RGB(240, 200, 170), RGB(214, 164, 122), RGB(190, 160, 110), RGB(150, 100, 70), RGB(96, 62, 44)][rawValue] }
}

public enum HairColor: Int, CaseIterable, Codable, Sendable {
    case black, brown, blonde, red, white, blue, pink
    public var word: String { ["black", "brown", "blonde", "red", "white", "blue", "pink"][rawValue] }
    var rgb: RGB { [RGB(30, 26, 26), RGB(110, 66, 34), RGB(236, 204, 96), RGB(196, 60, 30), RGB(235, 235, 240), RGB(50, 100, 220), RGB(240, 110, 180)][rawValue] }
}

public enum HairStyle: Int, CaseIterable, Codable, Sendable {
    case bald, short, long, spiky, ponytail, curly
    public var word: String { ["bald", "short", "long", "spiky", "ponytail", "curly"][rawValue] }
}

public enum EyeColor: Int, CaseIterable, Codable, Sendable {
    case brown, blue, green, grey, amber, violet
    public var word: String { ["brown", "blue", "green", "grey", "amber", "violet"][rawValue] }
    var rgb: RGB { [RGB(90, 50, 20), RGB(40, 110, 230), RGB(30, 160, 60), RGB(130, 135, 140), RGB(230, 150, 20), RGB(150, 60, 200)][rawValue] }
}

public enum OutfitColor: Int, CaseIterable, Codable, Sendable {
    case red, orange, yellow, green, teal, blue, purple, black
    public var word: String { ["red", "orange", "yellow", "green", "teal", "blue", "purple", "black"][rawValue] }
    var rgb: RGB { [RGB(200, 40, 40), RGB(236, 130, 30), RGB(230, 200, 40), RGB(50, 150, 60), RGB(30, 160, 160), RGB(40, 70, 200), RGB(130, 50, 170), RGB(40, 40, 48)][rawValue] }
}

public enum OutfitPattern: Int, CaseIterable, Codable, Sendable {
    case plain, stripes, dots, checks, zigzag
    public var word: String { ["plain", "striped", "polka-dot", "checked", "zigzag"][rawValue] }
}

public enum Accessory: Int, CaseIterable, Codable, Sendable {
    case none, glasses, scarf, earrings, headband, necklace
    public var word: String { ["no accessory", "glasses", "a scarf", "earrings", "a headband", "a necklace"][rawValue] }
}

public enum Pose: Int, CaseIterable, Codable, Sendable {
    case standing, waving, armsUp, walking, pointing
    public var word: String { ["standing", "waving", "with arms raised", "walking", "pointing"][rawValue] }
}

public enum Expression: Int, CaseIterable, Codable, Sendable {
    case neutral, happy, sad, angry, surprised
    public var word: String { ["calm", "smiling", "sad", "angry", "surprised"][rawValue] }
}

public enum Background: Int, CaseIterable, Codable, Sendable {
    case sky, forest, desert, night, castle, beach
    public var word: String { ["under a blue sky", "in a forest", "in the desert", "at night", "in a castle", "on a beach"][rawValue] }
}

public enum View: Int, CaseIterable, Codable, Sendable {
    case front, side
    public var word: String { ["front view", "side view"][rawValue] }
}

/// What stays the same for one character.
public struct CharacterIdentity: Codable, Sendable, Equatable, Hashable {
    public var characterClass: WorldClass
    public var skin: SkinTone
    public var hairColor: HairColor
    public var hairStyle: HairStyle
    public var eyeColor: EyeColor
    public var outfitColor: OutfitColor
    public var outfitPattern: OutfitPattern
    public var accessory: Accessory

    public init(characterClass: WorldClass, skin: SkinTone, hairColor: HairColor, hairStyle: HairStyle, eyeColor: EyeColor,
                outfitColor: OutfitColor, outfitPattern: OutfitPattern, accessory: Accessory) {
        self.characterClass = characterClass; self.skin = skin; self.hairColor = hairColor; self.hairStyle = hairStyle
        self.eyeColor = eyeColor; self.outfitColor = outfitColor; self.outfitPattern = outfitPattern; self.accessory = accessory
    }

    /// A stable number for this identity (all attributes, class included).
    public var id: Int {
        var v = characterClass.rawValue
        v = v * SkinTone.allCases.count + skin.rawValue
        v = v * HairColor.allCases.count + hairColor.rawValue
        v = v * HairStyle.allCases.count + hairStyle.rawValue
        v = v * EyeColor.allCases.count + eyeColor.rawValue
        v = v * OutfitColor.allCases.count + outfitColor.rawValue
        v = v * OutfitPattern.allCases.count + outfitPattern.rawValue
        return v * Accessory.allCases.count + accessory.rawValue
    }
}

/// What a prompt changes.
public struct SceneContext: Codable, Sendable, Equatable {
    public var pose: Pose
    public var expression: Expression
    public var background: Background
    public var view: View
    public init(pose: Pose, expression: Expression, background: Background, view: View) {
        self.pose = pose; self.expression = expression; self.background = background; self.view = view
    }
}

struct RGB: Equatable {
    var r: UInt8, g: UInt8, b: UInt8
    init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    func scaled(_ f: Double) -> RGB {
        RGB(UInt8(min(255, Double(r) * f)), UInt8(min(255, Double(g) * f)), UInt8(min(255, Double(b) * f)))
    }
}
