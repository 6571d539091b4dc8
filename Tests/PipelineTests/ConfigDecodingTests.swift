// What a broken JSON file is told as: the key and what it should be, or where the syntax
// breaks — not "not valid JSON" for a type or range error, not "field ''".

import XCTest
@testable import Pipeline

final class ConfigDecodingTests: XCTestCase {
    struct Sample: Decodable { var steps: Int; var name: String; var inner: Inner? }
    struct Inner: Decodable { var scale: Float }

    func reason(_ json: String) -> String {
        do { _ = try JSONDecoder().decode(Sample.self, from: Data(json.utf8)); return "decoded" } catch { return ConfigDecoding.describe(error, data: Data(json.utf8)) }
    }

    func testMessagesNameTheKey() {
        XCTAssertEqual(reason(#"{"steps": "ten", "name": "x"}"#), "key 'steps' should be an integer")
        XCTAssertEqual(reason(#"{"name": "x"}"#), "missing key 'steps'")
        XCTAssertEqual(reason(#"{"steps": 1, "name": "x", "inner": {"scale": "big"}}"#), "key 'inner.scale' should be a number")
        XCTAssertEqual(reason(#"{"steps": 99999999999999999999999, "name": "x"}"#), "key 'steps' holds a number out of range")
        XCTAssertTrue(reason(#"{"steps": 1, "name": "#).hasPrefix("not valid JSON"))
        XCTAssertTrue(reason("[1, 2]").hasPrefix("the top level should be"), reason("[1, 2]"))
    }
}
