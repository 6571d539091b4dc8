// Shared helpers: fixture files from tools/fixtures/*.py and tolerance checks.

import Foundation
import XCTest
@testable import Pipeline

enum Fixtures {
    static func url(_ name: String) -> URL {
        Bundle.module.url(forResource: "Fixtures/" + name, withExtension: nil)!
    }

    static func file(_ name: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: url(name).path)
    }
}

/// max |a − b| ≤ tol · max(1, max |b|): relative to the reference's scale.
func assertClose(_ a: Tensor, _ b: Tensor, tol: Float = 1e-4, _ what: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shape", file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = a.toArray(), y = b.toArray()
    var maxErr: Float = 0, scale: Float = 1
    for i in x.indices {
        if y[i].isInfinite || y[i].isNaN {
            XCTAssertEqual(x[i].bitPattern == y[i].bitPattern || (x[i].isNaN && y[i].isNaN), true, "\(what)[\(i)]: \(x[i]) vs \(y[i])", file: file, line: line)
            continue
        }
        maxErr = max(maxErr, abs(x[i] - y[i]))
        scale = max(scale, abs(y[i]))
    }
    XCTAssertLessThanOrEqual(maxErr, tol * scale, "\(what): max abs error \(maxErr) at scale \(scale)", file: file, line: line)
}
