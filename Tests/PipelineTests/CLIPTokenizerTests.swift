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
}
