// How words name a character's identity attributes, both ways: World captions phrase them the
// ways artists write them ("with red hair", "red-haired", "long red hair", "blue-eyed", "dark-
// skinned", "in a teal striped outfit", "dressed in teal", "wearing a scarf"), and evaluation
// reads them back out of any prompt by their nouns ("hair", "eyes", "skin", "outfit") rather
// than by the exact phrases captions use, so a prompt file written by someone else still parses.
// Bald characters show no hair colour and "no accessory" is nothing to draw: neither is named.

public enum IdentityPhrases {
    /// The attributes a caption may name for `id` (hair colour is invisible on a bald head; a
    /// missing accessory is not something prompts say).
    public static func nameable(_ id: CharacterIdentity) -> [WorldAttribute] {
        WorldAttribute.identity.filter {
            !($0 == .hairColor && id.hairStyle == .bald) && !($0 == .accessory && id.accessory == .none)
        }
    }

    /// Words for `attributes` of `id`: adjectives that go before the class noun and phrases
    /// that follow it. The phrasing of each attribute is drawn from `r`.
    public static func describe(_ id: CharacterIdentity, _ attributes: Set<WorldAttribute>,
                                _ r: inout SplitMixRandom) -> (before: [String], after: [String]) {
        var before: [String] = [], after: [String] = []
        func roll(_ n: Int) -> Int { Int(r.next() % UInt64(n)) }
        let hairColor = attributes.contains(.hairColor) ? id.hairColor.word : nil
        let hairStyle = attributes.contains(.hairStyle) ? id.hairStyle : nil
        switch (hairColor, hairStyle) {
        case (nil, nil): break
        case (_, .bald?): roll(2) == 0 ? before.append("bald") : after.append("with a bald head")
        case (let c?, nil): roll(2) == 0 ? before.append("\(c)-haired") : after.append("with \(c) hair")
        case (let c, .ponytail?): after.append(c.map { "with a \($0) ponytail" } ?? "with a ponytail")
        case (let c, let s?):
            if let c, roll(3) == 0 { before.append("\(c)-haired"); after.append("with \(s.word) hair") }
            else { after.append("with " + [s.word, c].compactMap { $0 }.joined(separator: " ") + " hair") }
        }
        if attributes.contains(.eyeColor) {
            roll(2) == 0 ? before.append("\(id.eyeColor.word)-eyed") : after.append("with \(id.eyeColor.word) eyes")
        }
        if attributes.contains(.skin) {
            roll(2) == 0 ? before.append("\(id.skin.word)-skinned") : after.append("with \(id.skin.word) skin")
        }
        let outfitColor = attributes.contains(.outfitColor) ? id.outfitColor.word : nil
        let pattern = attributes.contains(.outfitPattern) ? id.outfitPattern.word : nil
        if outfitColor != nil || pattern != nil {
            let words = [outfitColor, pattern].compactMap { $0 }.joined(separator: " ")
            let a = article(words)
            switch roll(pattern == nil ? 4 : 3) {
            case 0: after.append("in \(a) \(words) outfit")
            case 1: after.append("wearing \(a) \(words) outfit")
            case 2: after.append("with \(a) \(words) outfit")
            default: after.append("dressed in \(words)")
            }
        }
        if attributes.contains(.accessory), id.accessory != .none {
            after.append((roll(2) == 0 ? "wearing " : "with ") + id.accessory.word)
        }
        // Phrases in a random order, as people write them.
        for i in stride(from: after.count - 1, to: 0, by: -1) { after.swapAt(i, roll(i + 1)) }
        return (before, after)
    }

    static func article(_ word: String) -> String { "aeiou".contains(word.first ?? "x") ? "an" : "a" }

    /// "a red-haired knight with blue eyes and a scarf"-style text for a class noun.
    public static func subject(_ classWord: String, before: [String], after: [String]) -> String {
        let noun = (before + [classWord]).joined(separator: " ")
        let head = article(noun) + " " + noun
        guard !after.isEmpty else { return head }
        if after.count == 1 { return head + " " + after[0] }
        return head + " " + after.dropLast().joined(separator: ", ") + " and " + after.last!
    }

    /// Every nameable attribute of `id` spelled out (the prompt-engineering baseline), in one
    /// fixed phrasing.
    public static func fullPrompt(_ id: CharacterIdentity) -> String {
        var after: [String] = []
        if id.hairStyle == .bald { after.append("a bald head") }
        else if id.hairStyle == .ponytail { after.append("\(article(id.hairColor.word)) \(id.hairColor.word) ponytail") }
        else { after.append("\(id.hairStyle.word) \(id.hairColor.word) hair") }
        after.append("\(id.eyeColor.word) eyes")
        after.append("\(id.skin.word) skin")
        after.append("\(article(id.outfitColor.word)) \(id.outfitColor.word) \(id.outfitPattern.word) outfit")
        if id.accessory != .none { after.append(id.accessory.word) }
        return subject(id.characterClass.word, before: [], after: ["with " + after.dropLast().joined(separator: ", ") + " and " + after.last!])
    }

    // MARK: reading

    /// Identity attributes (and the class) named in `text`, value indices by attribute.
    /// Colour and style words count for the noun they stand before ("red hair", "long red
    /// hair", "red-haired"), or after "dressed in".
    public static func named(in text: String) -> [WorldAttribute: Int] {
        var tokens: [String] = []
        var word = ""
        for ch in text.lowercased() {
            if ch.isLetter { word.append(ch); continue }
            if !word.isEmpty { tokens.append(word); word = "" }
            if ch == "," || ch == "." || ch == ";" { tokens.append(",") }
        }
        if !word.isEmpty { tokens.append(word) }
        // "polka dot" is one pattern word; "gray" is "grey".
        var t: [String] = []
        for w in tokens {
            if w == "dot" || w == "dotted" || w == "dots", t.last == "polka" { t[t.count - 1] = "polka-dot"; continue }
            t.append(w == "gray" ? "grey" : w)
        }
        var out: [WorldAttribute: Int] = [:]
        func index<T: CaseIterable & RawRepresentable>(_ w: String, _ type: T.Type, _ word: (T) -> String) -> Int? where T.RawValue == Int {
            T.allCases.first { word($0) == w }?.rawValue
        }
        let anchors: Set<String> = ["hair", "haired", "ponytail", "eyes", "eyed", "skin", "skinned", "outfit", "outfits", "clothes", "dressed"]
        /// The up-to-3 modifier words before position i (stopping at a comma, a joining word or
        /// another attribute's noun: "brown-eyed tan-skinned" gives "skinned" only "tan").
        func modifiers(before i: Int) -> [String] {
            var m: [String] = [], j = i - 1
            while j >= 0, m.count < 3, !anchors.contains(t[j]),
                  ![",", "and", "with", "a", "an", "in", "wearing", "of", "has", "the"].contains(t[j]) { m.append(t[j]); j -= 1 }
            return m
        }
        for (i, w) in t.enumerated() {
            switch w {
            case "hair", "haired", "ponytail":
                if w == "ponytail" { out[.hairStyle] = HairStyle.ponytail.rawValue }
                for m in modifiers(before: i) {
                    if let c = index(m, HairColor.self, { $0.word }) { out[.hairColor] = c }
                    if let s = index(m, HairStyle.self, { $0.word }), w != "ponytail" { out[.hairStyle] = s }
                }
            case "bald": out[.hairStyle] = HairStyle.bald.rawValue
            case "eyes", "eyed":
                for m in modifiers(before: i) { if let c = index(m, EyeColor.self, { $0.word }) { out[.eyeColor] = c } }
            case "skin", "skinned":
                for m in modifiers(before: i) { if let c = index(m, SkinTone.self, { $0.word }) { out[.skin] = c } }
            case "outfit", "outfits", "clothes", "dressed":
                let around = w == "dressed" ? Array(t[min(i + 1, t.count)..<min(i + 4, t.count)].filter { $0 != "in" && $0 != "a" })
                                            : modifiers(before: i)
                for m in around {
                    if let c = index(m, OutfitColor.self, { $0.word }) { out[.outfitColor] = c }
                    if let p = index(m, OutfitPattern.self, { $0.word }) { out[.outfitPattern] = p }
                }
            default:
                if let a = Accessory.allCases.first(where: { $0 != .none && $0.word.split(separator: " ").last.map(String.init) == w }) {
                    out[.accessory] = a.rawValue
                }
                if let c = index(w, WorldClass.self, { $0.word }), out[.characterClass] == nil { out[.characterClass] = c }
            }
        }
        return out
    }
}
