// The A1111 `parameters` text of a generated PNG, written and parsed:
//   <prompt>
//   Negative prompt: <negative>
//   Steps: 25, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: troupe-mini, …
// Values containing ", " or quotes are written as JSON strings, as A1111 does. Fields beyond
// the standard ones (Troupe's character, v, η1, η2, …) travel in `extra`, in order.

import Foundation

public struct GenerationParameters: Equatable, Sendable {
    public var prompt: String
    public var negativePrompt: String = ""
    public var steps: Int?
    public var sampler: String?
    public var cfgScale: Double?
    public var seed: UInt64?
    public var width: Int?, height: Int?
    public var model: String?
    public var clipSkip: Int?
    public var extra: [(String, String)] = []

    public init(prompt: String) { self.prompt = prompt }

    public static func == (a: Self, b: Self) -> Bool {
        a.prompt == b.prompt && a.negativePrompt == b.negativePrompt && a.steps == b.steps && a.sampler == b.sampler
            && a.cfgScale == b.cfgScale && a.seed == b.seed && a.width == b.width && a.height == b.height
            && a.model == b.model && a.clipSkip == b.clipSkip && a.extra.map { $0.0 + "\u{0}" + $0.1 } == b.extra.map { $0.0 + "\u{0}" + $0.1 }
    }

    public static let chunkKey = "parameters"

    static func quote(_ v: String) -> String {
        guard v.contains(",") || v.contains("\"") || v.contains("\n") || v.contains(":") else { return v }
        let data = try! JSONSerialization.data(withJSONObject: [v], options: [.withoutEscapingSlashes])
        let s = String(decoding: data, as: UTF8.self)
        return String(s.dropFirst().dropLast())
    }

    public static func format(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : String(d)
    }

    /// The text A1111 writes.
    public var text: String {
        var fields: [(String, String)] = []
        if let steps { fields.append(("Steps", String(steps))) }
        if let sampler { fields.append(("Sampler", sampler)) }
        if let cfgScale { fields.append(("CFG scale", Self.format(cfgScale))) }
        if let seed { fields.append(("Seed", String(seed))) }
        if let width, let height { fields.append(("Size", "\(width)x\(height)")) }
        if let model { fields.append(("Model", model)) }
        if let clipSkip, clipSkip > 1 { fields.append(("Clip skip", String(clipSkip))) }
        fields += extra
        var lines = [prompt]
        if !negativePrompt.isEmpty { lines.append("Negative prompt: " + negativePrompt) }
        lines.append(fields.map { "\($0.0): \(Self.quote($0.1))" }.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// Parses A1111 text. Unknown fields land in `extra`; a text with no settings line is all prompt.
    public init(text: String) {
        var lines = text.components(separatedBy: "\n")
        var settings: [(String, String)] = []
        if let last = lines.last, let parsed = Self.parseFields(last), !parsed.isEmpty, parsed.contains(where: { $0.0 == "Steps" || $0.0 == "Seed" }) {
            settings = parsed
            lines.removeLast()
        }
        var promptLines: [String] = [], negLines: [String] = []
        var inNegative = false
        for l in lines {
            if !inNegative, l.hasPrefix("Negative prompt:") {
                inNegative = true
                negLines.append(String(l.dropFirst("Negative prompt:".count)).trimmingCharacters(in: .whitespaces))
            } else if inNegative { negLines.append(l) } else { promptLines.append(l) }
        }
        self.init(prompt: promptLines.joined(separator: "\n"))
        negativePrompt = negLines.joined(separator: "\n")
        for (k, v) in settings {
            switch k {
            case "Steps": steps = Int(v)
            case "Sampler": sampler = v
            case "CFG scale": cfgScale = Double(v)
            case "Seed": seed = UInt64(v)
            case "Size":
                let p = v.split(separator: "x")
                if p.count == 2 { width = Int(p[0]); height = Int(p[1]) }
            case "Model": model = v
            case "Clip skip": clipSkip = Int(v)
            default: extra.append((k, v))
            }
        }
    }

    /// "Key: value, Key: "quoted, value", …" → pairs; nil when the line is not of that form.
    static func parseFields(_ line: String) -> [(String, String)]? {
        var out: [(String, String)] = []
        let s = Array(line)
        var i = 0
        while i < s.count {
            while i < s.count && s[i] == " " { i += 1 }
            guard let colon = s[i...].firstIndex(of: ":") else { return nil }
            let key = String(s[i..<colon]).trimmingCharacters(in: .whitespaces)
            if key.isEmpty || key.contains(",") { return nil }
            i = colon + 1
            while i < s.count && s[i] == " " { i += 1 }
            var value = ""
            if i < s.count && s[i] == "\"" {
                var j = i + 1, escaped = false
                while j < s.count { if escaped { escaped = false } else if s[j] == "\\" { escaped = true } else if s[j] == "\"" { break }; j += 1 }
                let lit = String(s[i...Swift.min(j, s.count - 1)])
                value = (try? JSONSerialization.jsonObject(with: Data(("[" + lit + "]").utf8)) as? [String])??.first ?? lit
                i = j + 1
            } else {
                var j = i
                while j < s.count && !(s[j] == "," && (j + 1 == s.count || s[j + 1] == " ")) { j += 1 }
                value = String(s[i..<j]).trimmingCharacters(in: .whitespaces)
                i = j
            }
            out.append((key, value))
            while i < s.count && (s[i] == "," || s[i] == " ") { i += 1 }
        }
        return out
    }
}
