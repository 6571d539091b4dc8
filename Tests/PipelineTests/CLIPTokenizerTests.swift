// Token ids against transformers' CLIPTokenizer: the full SD vocabulary (models/clip-tokenizer,
// rebuilt by tools/fixtures/clip_vocab.py) on tricky prompts, and the tiny test vocabularies
// in both file layouts (tokenizer.json, vocab.json + merges.txt).

import Foundation
import XCTest
@testable import Pipeline

final class CLIPTokenizerTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testFullVocabularyMatchesTransformers() throws {
        let tok = try CLIPTokenizer(directory: Self.repoRoot.appendingPathComponent("models/clip-tokenizer").path)
        XCTAssertEqual(tok.vocabulary.count, 49408)
        let data = try Data(contentsOf: Fixtures.url("tokenizer.json"))
        let cases = try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            let text = c["text"] as! String, ids = c["ids"] as! [Int]
            XCTAssertEqual(tok.encode(text), ids, "\(text)")
        }
    }

    func testTinyVocabulariesInBothLayouts() throws {
        for name in ["a", "b"] {
            let tok = try CLIPTokenizer(directory: Fixtures.url("sd/\(name)/tokenizer").path)
            let ref = try Fixtures.file("sd/\(name).safetensors")
            let ids = try ref.integers("tok.ids")
            XCTAssertEqual(tok.encode("a knight with a red sword"), Array(ids[0..<77]), name)
            XCTAssertEqual(tok.encode(""), Array(ids[77..<154]), name)
        }
    }

    func testMissingFilesIsAClearError() {
        XCTAssertThrowsError(try CLIPTokenizer(directory: "/nonexistent")) { e in
            XCTAssertTrue("\(e)".contains("vocab.json"), "\(e)")
        }
    }

    /// The heap BPE gives the ids the pair-rescanning algorithm gives (CLIP's bpe()), on random
    /// words over letters that merge a lot; a 100 k-character word encodes (it took minutes),
    /// and the 77-token window stops encoding early with the same ids.
    func testHeapBPEMatchesRescanningAndScales() throws {
        let tok = try CLIPTokenizer(directory: Self.repoRoot.appendingPathComponent("models/clip-tokenizer").path)
        func reference(_ word: String) -> [Int] {
            var symbols = Array(word.utf8).map { tok.byteSymbols[Int($0)] }
            symbols[symbols.count - 1] += "</w>"
            while symbols.count > 1 {
                var best = Int.max, at = -1
                for k in 0..<(symbols.count - 1) {
                    if let r = tok.ranks[symbols[k] + " " + symbols[k + 1]], r < best { best = r; at = k }
                }
                if at < 0 { break }
                symbols[at] += symbols[at + 1]; symbols.remove(at: at + 1)
            }
            return symbols.map { tok.vocabulary[$0] ?? tok.eosID }
        }
        var r = SplitMixRandom(seed: 9)
        let letters = Array("aeinorstlhkgw")
        for _ in 0..<300 {
            let n = 1 + Int(r.next() % 40)
            let word = String((0..<n).map { _ in letters[Int(r.next() % UInt64(letters.count))] })
            XCTAssertEqual(tok.bpe(word), reference(word), word)
        }
        let long = String(repeating: "knightwizard", count: 8_400)
        XCTAssertGreaterThan(tok.tokenIDs(long).count, 1000)
        let prompt = "a knight " + long + " waving"
        XCTAssertEqual(tok.encode(prompt), [tok.bosID] + Array(tok.tokenIDs(prompt).prefix(75)) + [tok.eosID])
    }

    /// Base-word positions: every sub-token of a multi-token word, every occurrence; a word not
    /// in the prompt is an error that says so.
    func testBaseWordPositions() throws {
        let tok = try CLIPTokenizer(directory: Self.repoRoot.appendingPathComponent("models/clip-tokenizer").path)
        XCTAssertEqual(try tok.positions(of: "knight", in: "a knight waving"), [2])
        let multi = tok.tokenIDs("zorblax")
        XCTAssertGreaterThan(multi.count, 1)
        XCTAssertEqual(try tok.positions(of: "zorblax", in: "a zorblax waving, the zorblax smiles"),
                       Array(2..<(2 + multi.count)) + Array((5 + multi.count)..<(5 + 2 * multi.count)))
        XCTAssertThrowsError(try tok.positions(of: "ninja", in: "a knight waving")) { e in
            XCTAssertTrue("\(e)".contains("ninja") && "\(e)".contains("does not contain"), "\(e)")
        }
    }
}
