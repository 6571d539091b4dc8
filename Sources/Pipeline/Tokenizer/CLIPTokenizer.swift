// CLIP byte-level BPE tokenizer, the same ids as transformers' CLIPTokenizer (5.x, backed by
// the tokenizers library; see transformers/models/clip/tokenization_clip.py):
//   1. special tokens <|startoftext|>/<|endoftext|> in the raw text are matched first, exactly;
//   2. normaliser: NFC, every whitespace run → " ", lower-case;
//   3. pre-tokeniser: CLIP's regex  <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|
//      [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+  (whitespace dropped), then bytes → unicode symbols;
//   4. BPE with "</w>" on each word's last symbol, merging the lowest-ranked pair first
//      (leftmost on ties);
//   5. [bos] + ids + [eos], truncated to 77 and padded with the pad token.
// Loads vocab.json + merges.txt (SD 1.x folders) or tokenizer.json (saved by transformers 5).

import Foundation

public enum TokenizerError: Error, CustomStringConvertible {
    case missingFiles(directory: String)
    case unreadable(file: String, reason: String)
    case missingToken(file: String, token: String)
    case baseWord(word: String, prompt: String, reason: String)

    public var description: String {
        switch self {
        case let .missingFiles(d): return "\(d): no tokenizer found (need vocab.json + merges.txt, or tokenizer.json)"
        case let .unreadable(f, r): return "\(f): cannot read tokenizer file (\(r))"
        case let .missingToken(f, t): return "\(f): vocabulary has no '\(t)' token"
        case let .baseWord(w, p, r): return "base word '\(w)' in prompt '\(p)': \(r)"
        }
    }
}

public final class CLIPTokenizer: @unchecked Sendable {
    public static let startToken = "<|startoftext|>", endToken = "<|endoftext|>"

    public let vocabulary: [String: Int]
    let ranks: [String: Int]                    // "a b" → merge rank
    let byteSymbols: [String]                   // byte → its unicode stand-in
    public let bosID: Int, eosID: Int, padID: Int
    public let maxLength: Int
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()

    public init(vocabulary: [String: Int], merges: [(String, String)], padToken: String = CLIPTokenizer.endToken,
                maxLength: Int = 77, source: String = "<memory>") throws {
        self.vocabulary = vocabulary
        var r: [String: Int] = [:]
        for (i, m) in merges.enumerated() where r[m.0 + " " + m.1] == nil { r[m.0 + " " + m.1] = i }
        ranks = r
        byteSymbols = CLIPTokenizer.bytesToUnicode()
        guard let b = vocabulary[CLIPTokenizer.startToken] else { throw TokenizerError.missingToken(file: source, token: CLIPTokenizer.startToken) }
        guard let e = vocabulary[CLIPTokenizer.endToken] else { throw TokenizerError.missingToken(file: source, token: CLIPTokenizer.endToken) }
        guard let p = vocabulary[padToken] else { throw TokenizerError.missingToken(file: source, token: padToken) }
        bosID = b; eosID = e; padID = p
        self.maxLength = maxLength
    }

    /// Loads a diffusers `tokenizer/` folder.
    public convenience init(directory: String) throws {
        let fm = FileManager.default
        let vocabPath = directory + "/vocab.json", mergesPath = directory + "/merges.txt", jsonPath = directory + "/tokenizer.json"
        var padToken = CLIPTokenizer.endToken
        if let cfg = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/tokenizer_config.json"))) as? [String: Any] {
            if let p = cfg["pad_token"] as? String { padToken = p } else if let p = (cfg["pad_token"] as? [String: Any])?["content"] as? String { padToken = p }
        }
        if fm.fileExists(atPath: vocabPath) && fm.fileExists(atPath: mergesPath) {
            let vocab = try CLIPTokenizer.readJSON(vocabPath) as? [String: Int]
            guard let vocab else { throw TokenizerError.unreadable(file: vocabPath, reason: "not a {token: id} object") }
            guard let text = try? String(contentsOfFile: mergesPath, encoding: .utf8) else {
                throw TokenizerError.unreadable(file: mergesPath, reason: "not UTF-8 text")
            }
            var merges: [(String, String)] = []
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !line.hasPrefix("#version") {
                let parts = line.split(separator: " ")
                if parts.count == 2 { merges.append((String(parts[0]), String(parts[1]))) }
            }
            try self.init(vocabulary: vocab, merges: merges, padToken: padToken, source: vocabPath)
        } else if fm.fileExists(atPath: jsonPath) {
            guard let root = try CLIPTokenizer.readJSON(jsonPath) as? [String: Any],
                  let model = root["model"] as? [String: Any],
                  let vocab = model["vocab"] as? [String: Int],
                  let rawMerges = model["merges"] as? [Any] else {
                throw TokenizerError.unreadable(file: jsonPath, reason: "no BPE model.vocab / model.merges")
            }
            var merges: [(String, String)] = []
            for m in rawMerges {
                if let pair = m as? [String], pair.count == 2 { merges.append((pair[0], pair[1])) }
                else if let s = m as? String { let p = s.split(separator: " "); if p.count == 2 { merges.append((String(p[0]), String(p[1]))) } }
            }
            try self.init(vocabulary: vocab, merges: merges, padToken: padToken, source: jsonPath)
        } else {
            throw TokenizerError.missingFiles(directory: directory)
        }
    }

    private static func readJSON(_ path: String) throws -> Any {
        do { return try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw TokenizerError.unreadable(file: path, reason: error.localizedDescription)
        }
    }

    /// GPT-2's reversible byte → printable-unicode table.
    static func bytesToUnicode() -> [String] {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) { bs.append(b); cs.append(256 + n); n += 1 }
        var table = [String](repeating: "", count: 256)
        for (b, c) in zip(bs, cs) { table[b] = String(Character(Unicode.Scalar(UInt32(c))!)) }
        return table
    }

    // MARK: encoding

    /// Ids of `text` with start/end tokens, truncated and padded to `maxLength`.
    public func encode(_ text: String) -> [Int] {
        var ids = [bosID] + tokenIDs(text, limit: maxLength - 2).prefix(maxLength - 2) + [eosID]
        while ids.count < maxLength { ids.append(padID) }
        return ids
    }

    /// Ids of `text` alone (no start/end tokens, no padding). With `limit`, words after the
    /// first `limit` ids are not encoded (the ids up to the limit are exact: BPE never merges
    /// across words).
    public func tokenIDs(_ text: String, limit: Int = .max) -> [Int] {
        var out: [Int] = []
        for segment in splitSpecials(text) {
            if out.count >= limit { break }
            switch segment {
            case .special(let id): out.append(id)
            case .text(let t):
                for word in CLIPTokenizer.preTokenize(CLIPTokenizer.normalise(t)) {
                    if out.count >= limit { break }
                    out += bpe(word)
                }
            }
        }
        return out
    }

    /// Token positions (in `encode(prompt)`, start token at 0) of every occurrence of `word`'s
    /// tokens in `prompt`: where a base word's offset goes. A word that does not occur in the
    /// prompt (as whole tokens, within the 77-token window) is an error.
    public func positions(of word: String, in prompt: String) throws -> [Int] {
        let needle = tokenIDs(word)
        guard !needle.isEmpty else { throw TokenizerError.baseWord(word: word, prompt: prompt, reason: "it has no tokens") }
        let ids = Array(encode(prompt).prefix { $0 != eosID })
        var out: [Int] = []
        var i = 1
        while i + needle.count <= ids.count {
            if Array(ids[i..<(i + needle.count)]) == needle { out += Array(i..<(i + needle.count)); i += needle.count } else { i += 1 }
        }
        guard !out.isEmpty else {
            throw TokenizerError.baseWord(word: word, prompt: prompt, reason: "the prompt does not contain it (as a whole word, within 77 tokens); name it in the prompt")
        }
        return out
    }

    /// `encode(prompt)` with every occurrence of `word`'s tokens taken out (the rest moved up,
    /// padded again): the prompt without its subject, for SubjectMask. Errors as `positions`.
    public func encode(_ prompt: String, removing word: String) throws -> [Int] {
        let drop = Set(try positions(of: word, in: prompt))
        var ids = encode(prompt).enumerated().filter { !drop.contains($0.offset) }.map(\.element)
        while ids.count < maxLength { ids.append(padID) }
        return ids
    }

    private enum Segment { case special(Int), text(String) }

    private func splitSpecials(_ text: String) -> [Segment] {
        var segments: [Segment] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let a = rest.range(of: CLIPTokenizer.startToken), b = rest.range(of: CLIPTokenizer.endToken)
            let first = [a, b].compactMap { $0 }.min { $0.lowerBound < $1.lowerBound }
            guard let r = first else { segments.append(.text(String(rest))); break }
            if r.lowerBound > rest.startIndex { segments.append(.text(String(rest[..<r.lowerBound]))) }
            segments.append(.special(rest[r] == CLIPTokenizer.startToken ? bosID : eosID))
            rest = rest[r.upperBound...]
        }
        return segments
    }

    static func normalise(_ text: String) -> String {
        var collapsed = String.UnicodeScalarView()
        var inSpace = false
        for s in text.precomposedStringWithCanonicalMapping.unicodeScalars {
            if s.properties.isWhitespace {
                if !inSpace { collapsed.append(" ") }
                inSpace = true
            } else {
                collapsed.append(s); inSpace = false
            }
        }
        return String(collapsed).lowercased()
    }

    @inline(__always) static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    @inline(__always) static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// CLIP's pre-tokenising regex as a scanner over unicode scalars.
    static func preTokenize(_ text: String) -> [String] {
        let s = Array(text.unicodeScalars)
        var words: [String] = []
        var i = 0
        func word(_ a: Int, _ b: Int) { var v = String.UnicodeScalarView(); v.append(contentsOf: s[a..<b]); words.append(String(v)) }
        let specials = [Array(startToken.unicodeScalars), Array(endToken.unicodeScalars)]
        let contractions = ["s", "t", "re", "ve", "m", "ll", "d"].map { Array($0.unicodeScalars) }
        scan: while i < s.count {
            let c = s[i]
            if c.properties.isWhitespace { i += 1; continue }
            for sp in specials where i + sp.count <= s.count && Array(s[i..<(i + sp.count)]) == sp {
                word(i, i + sp.count); i += sp.count; continue scan
            }
            if c == "'" {
                for ct in contractions where i + 1 + ct.count <= s.count && Array(s[(i + 1)..<(i + 1 + ct.count)]) == ct {
                    word(i, i + 1 + ct.count); i += 1 + ct.count; continue scan
                }
            }
            var j = i + 1
            if isLetter(c) {
                while j < s.count && isLetter(s[j]) { j += 1 }
            } else if isNumber(c) {
                // one digit per token
            } else {
                while j < s.count && !isLetter(s[j]) && !isNumber(s[j]) && !s[j].properties.isWhitespace { j += 1 }
            }
            word(i, j); i = j
        }
        return words
    }

    /// BPE-encodes one pre-token: repeatedly merges the adjacent pair with the lowest merge
    /// rank (leftmost on ties), as CLIP's bpe(). Symbols are a linked list and candidate pairs
    /// a min-heap keyed by (rank, position), with stale entries skipped: O(n log n) in the
    /// word's length, where rescanning every pair per merge was O(n²) (a 100 k-character word
    /// from a PNG took minutes).
    func bpe(_ word: String) -> [Int] {
        lock.lock()
        if let hit = cache[word] { lock.unlock(); return hit }
        lock.unlock()
        var symbols = Array(word.utf8).map { byteSymbols[Int($0)] }
        if symbols.isEmpty { return [] }
        symbols[symbols.count - 1] += "</w>"
        let n = symbols.count
        var next = Array(1...n), prev = Array(-1..<(n - 1)), version = [Int](repeating: 0, count: n)
        next[n - 1] = -1
        var heap = MinHeap<PairCandidate>()
        func consider(_ i: Int) {
            guard i >= 0, next[i] >= 0, let r = ranks[symbols[i] + " " + symbols[next[i]]] else { return }
            heap.push(PairCandidate(rank: r, left: i, right: next[i], leftVersion: version[i], rightVersion: version[next[i]]))
        }
        for i in 0..<(n - 1) { consider(i) }
        while let c = heap.pop() {
            let (i, j) = (c.left, c.right)
            guard next[i] == j, version[i] == c.leftVersion, version[j] == c.rightVersion else { continue }
            symbols[i] += symbols[j]
            version[i] += 1; version[j] = -1
            next[i] = next[j]
            if next[j] >= 0 { prev[next[j]] = i }
            consider(prev[i]); consider(i)
        }
        var ids: [Int] = []
        var k = 0
        while k >= 0 { ids.append(vocabulary[symbols[k]] ?? eosID); k = next[k] }   // unk = <|endoftext|>
        if word.utf8.count <= 256 { lock.lock(); cache[word] = ids; lock.unlock() }
        return ids
    }
}

/// A mergeable adjacent pair: ordered by rank, then position (leftmost first).
struct PairCandidate: Comparable {
    let rank: Int, left: Int, right: Int, leftVersion: Int, rightVersion: Int
    static func < (a: PairCandidate, b: PairCandidate) -> Bool { (a.rank, a.left) < (b.rank, b.left) }
}

/// A binary min-heap.
struct MinHeap<Element: Comparable> {
    private var items: [Element] = []
    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 { let p = (i - 1) / 2; if items[i] < items[p] { items.swapAt(i, p); i = p } else { break } }
    }
    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && items[l] < items[m] { m = l }
                if r < items.count && items[r] < items[m] { m = r }
                if m == i { break }
                items.swapAt(i, m); i = m
            }
        }
        return top
    }
}
