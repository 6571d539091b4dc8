// One way to say what is wrong with a JSON file a user or a model folder gave us: the key path
// and what it should be, or where the syntax breaks — never a raw NSError dump, never "field ''".

import Foundation

public enum ConfigDecoding {
    /// As `describe(_:)`, and when the parser's complaint is really a number out of range (the
    /// text is valid JSON), names the key holding it.
    public static func describe(_ error: Error, data: Data) -> String {
        let plain = describe(error)
        guard plain.hasPrefix("not valid JSON"), let obj = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return plain }
        func find(_ o: Any, _ path: String) -> String? {
            if let d = o as? [String: Any] {
                for k in d.keys.sorted() { if let p = find(d[k]!, path.isEmpty ? k : path + "." + k) { return p } }
            } else if let a = o as? [Any] {
                for (i, v) in a.enumerated() { if let p = find(v, path + "[\(i)]") { return p } }
            } else if let n = o as? NSNumber, !(o is Bool) {
                let d = n.doubleValue
                if !d.isFinite || abs(d) >= 9.2e18 { return path }
            }
            return nil
        }
        if let key = find(obj, "") { return "key '\(key)' holds a number out of range" }
        return "a value is out of range or of the wrong type"
    }

    public static func describe(_ error: Error) -> String {
        func path(_ c: [CodingKey]) -> String {
            let p = c.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
            return p.isEmpty ? "the top level" : "key '\(p)'"
        }
        if let e = error as? DecodingError {
            switch e {
            case let .keyNotFound(k, ctx): return "missing \(path(ctx.codingPath + [k]))"
            case let .typeMismatch(t, ctx): return "\(path(ctx.codingPath)) should be \(typeName(t))"
            case let .valueNotFound(t, ctx): return "\(path(ctx.codingPath)) is null, expected \(typeName(t))"
            case let .dataCorrupted(ctx):
                if let u = ctx.underlyingError { return "not valid JSON (\(jsonReason(u)))" }
                return ctx.codingPath.isEmpty ? "not valid JSON (\(ctx.debugDescription))" : "\(path(ctx.codingPath)): \(ctx.debugDescription)"
            @unknown default: return "\(e)"
            }
        }
        return jsonReason(error)
    }

    /// Python's json writes -inf, inf and nan as bare `-Infinity`, `Infinity` and `NaN` (diffusers'
    /// DPMSolverMultistepScheduler config has `"lambda_min_clipped": -Infinity`), which strict JSON
    /// parsers refuse. Outside strings they become `null`: the key then takes its default.
    public static func nonFiniteAsNull(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        var out: [UInt8] = [], i = 0, inString = false
        out.reserveCapacity(bytes.count)
        let words: [[UInt8]] = [Array("-Infinity".utf8), Array("Infinity".utf8), Array("NaN".utf8)]
        outer: while i < bytes.count {
            let b = bytes[i]
            if inString {
                out.append(b)
                if b == UInt8(ascii: "\\"), i + 1 < bytes.count { out.append(bytes[i + 1]); i += 2; continue }
                if b == UInt8(ascii: "\"") { inString = false }
                i += 1; continue
            }
            if b == UInt8(ascii: "\"") { inString = true; out.append(b); i += 1; continue }
            for w in words where i + w.count <= bytes.count && Array(bytes[i..<(i + w.count)]) == w {
                out.append(contentsOf: Array("null".utf8)); i += w.count; continue outer
            }
            out.append(b); i += 1
        }
        return Data(out)
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Int.Type, is Int32.Type, is Int64.Type, is UInt64.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let n = "\(t)"
            if n.hasPrefix("Array") { return "a list" }
            if n.hasPrefix("Dictionary") { return "an object" }
            return n
        }
    }

    public static func jsonReason(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, or `fallback` when the key is absent (configs written before a field
    /// existed; diffusers configs that leave a default out). A present but wrong value throws.
    func decode<T: Decodable>(_ key: Key, or fallback: T) throws -> T { try decodeIfPresent(T.self, forKey: key) ?? fallback }
}
