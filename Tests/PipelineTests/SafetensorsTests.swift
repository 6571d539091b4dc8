// safetensors: reading files written by Python's safetensors, round trips through the
// writer, and a table of malformed files each giving its own typed error.

import Foundation
import XCTest
@testable import Pipeline

final class SafetensorsTests: XCTestCase {
    func testReadsPythonWrittenFile() throws {
        let f = try Fixtures.file("python_written.safetensors")
        XCTAssertEqual(f.metadata, ["format": "pt", "troupe": "fixture"])
        XCTAssertEqual(f.names, ["bf", "empty", "half", "ids", "weight"])
        let w = try f.tensor("weight")
        XCTAssertEqual(w.shape, [3, 4])
        XCTAssertEqual(w.toArray(), (0..<12).map { Float($0) / 7 })
        XCTAssertEqual(try f.tensor("half").toArray(), stride(from: -2.0, through: 2.0, by: 0.5).map { Float($0) })
        XCTAssertEqual(try f.tensor("bf").toArray(), [-2, -1, 0, 1, 2])
        XCTAssertEqual(try f.integers("ids"), [1, 2, 3])
        XCTAssertEqual(try f.tensor("empty").shape, [0, 3])
        XCTAssertThrowsError(try f.tensor("nope")) { e in
            XCTAssertEqual(e as? SafetensorsError, .missingTensor(file: f.path, tensor: "nope"))
        }
    }

    func testAlignedF32IsAZeroCopyViewOfTheMapping() throws {
        let f = try Fixtures.file("python_written.safetensors")
        let w = try f.tensor("weight")
        XCTAssertEqual(UnsafeMutableRawPointer(w.dataPointer), f.rawPointer(try f.entry("weight")))
    }

    func testWriterRoundTripF32AndF16() throws {
        let dir = NSTemporaryDirectory()
        var rng = SplitMixRandom(seed: 7)
        let a = Tensor.randn([3, 5], using: &rng), b = Tensor.randn([2, 2, 2], using: &rng)
        let path = dir + "troupe-rt.safetensors"
        try SafetensorsWriter.write(["a": a, "b.weight": b.transposed(0, 2)], to: path, metadata: ["k": "v"])
        let f = try SafetensorsFile(path: path)
        XCTAssertEqual(f.metadata, ["k": "v"])
        XCTAssertEqual(try f.tensor("a").toArray(), a.toArray())
        XCTAssertEqual(try f.tensor("b.weight").toArray(), b.transposed(0, 2).toArray())
        XCTAssertEqual(try f.tensor("b.weight").shape, [2, 2, 2])

        let p16 = dir + "troupe-rt16.safetensors"
        try SafetensorsWriter.write(["a": a], to: p16, dtype: .f16)
        let f16 = try SafetensorsFile(path: p16)
        XCTAssertEqual(try f16.entry("a").dtype, .f16)
        assertClose(try f16.tensor("a"), a, tol: 1e-3, "fp16 round trip")
    }

    // MARK: malformed files

    private func writeRaw(_ name: String, headerLength: UInt64? = nil, header: String, data: [UInt8] = []) -> String {
        var bytes = Data()
        var len = (headerLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &len) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: Array(header.utf8))
        bytes.append(contentsOf: data)
        let path = NSTemporaryDirectory() + "troupe-bad-\(name).safetensors"
        try! bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testMalformedFilesGiveTheirOwnErrors() throws {
        let good = #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let cases: [(String, String, (String) -> SafetensorsError)] = [
            ("truncated", { let p = NSTemporaryDirectory() + "troupe-bad-truncated.safetensors"; try! Data([1, 2, 3]).write(to: URL(fileURLWithPath: p)); return p }(),
             { .tooSmall(file: $0, size: 3) }),
            ("huge-header", writeRaw("huge", headerLength: 1 << 40, header: good),
             { .headerTooLarge(file: $0, length: 1 << 40, limit: SafetensorsFile.headerLimit) }),
            ("header-past-end", writeRaw("pastend", headerLength: 4096, header: good),
             { .headerPastEnd(file: $0, length: 4096, fileSize: 8 + good.utf8.count) }),
            ("unknown-dtype", writeRaw("dtype", header: #"{"t":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
             { .unknownDType(file: $0, tensor: "t", dtype: "Q7") }),
            ("size-mismatch", writeRaw("size", header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
             { .sizeMismatch(file: $0, tensor: "t", shape: [3], dtype: "F32", expectedBytes: 12, spanBytes: 8) }),
            ("span-past-end", writeRaw("span", header: good, data: Array(repeating: 0, count: 4)),
             { .spanPastEnd(file: $0, tensor: "t", end: 8, dataSize: 4) }),
            ("overlap", writeRaw("overlap", header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, data: Array(repeating: 0, count: 12)),
             { .overlap(file: $0, tensor: "b", other: "a") }),
        ]
        for (name, path, expected) in cases {
            XCTAssertThrowsError(try SafetensorsFile(path: path), name) { error in
                XCTAssertEqual(error as? SafetensorsError, expected(path), name)
                XCTAssertTrue("\(error)".contains(path), "\(name): message names the file: \(error)")
            }
        }
        // Bad JSON: the reason comes from the parser, so check the case only.
        let badJSON = writeRaw("json", header: #"{"t": {"dtype": "#)
        XCTAssertThrowsError(try SafetensorsFile(path: badJSON)) { error in
            guard case .badJSON(let f, _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(f, badJSON)
        }
        let notObject = writeRaw("entry", header: #"{"t": 5}"#)
        XCTAssertThrowsError(try SafetensorsFile(path: notObject)) { error in
            XCTAssertEqual(error as? SafetensorsError, .badEntry(file: notObject, tensor: "t", reason: "entry is not an object"))
        }
        let negShape = writeRaw("neg", header: #"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#)
        XCTAssertThrowsError(try SafetensorsFile(path: negShape)) { error in
            guard case .badEntry(_, "t", _)? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try SafetensorsFile(path: "/nonexistent/x.safetensors")) { error in
            guard case .cannotOpen? = error as? SafetensorsError else { return XCTFail("\(error)") }
        }
    }
}
