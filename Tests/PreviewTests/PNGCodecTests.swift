import Foundation
import XCTest
@testable import Preview

final class PNGCodecTests: XCTestCase {
    func testRoundTripRGBAndRGBA() throws {
        for channels in [3, 4] {
            let w = 7, h = 5
            let pixels = (0..<(w * h * channels)).map { UInt8(($0 * 37) & 255) }
            let img = RGBImage(width: w, height: h, channels: channels, pixels: pixels)
            let data = try PNGCodec.encode(img)
            XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            let path = NSTemporaryDirectory() + "troupe-png-\(channels).png"
            try data.write(to: URL(fileURLWithPath: path))
            let back = try PNGCodec.read(path: path)
            XCTAssertEqual(back, img)
        }
    }

    func testNonPNGGivesClearError() throws {
        let path = NSTemporaryDirectory() + "troupe-not-a.png"
        try Data("hello, not a png".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PNGCodec.read(path: path)) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
    }
}

final class PNGBadInputTests: XCTestCase {
    let dir = NSTemporaryDirectory()

    func testTruncatedPNGIsAClearError() throws {
        let good = try PNGCodec.encode(RGBImage(width: 32, height: 32, pixels: (0..<(32 * 32 * 3)).map { UInt8($0 & 255) }))
        let path = dir + "troupe-truncated-\(getpid()).png"
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PNGCodec.read(path: path)) { e in
            guard case .read(let f, _)? = e as? PNGError else { return XCTFail("\(e)") }
            XCTAssertEqual(f, path)
        }
    }

    /// A forged header claiming 100000 × 100000 pixels is refused before any pixel buffer is
    /// allocated (the file itself is tiny).
    func testHugeDimensionsAreRefused() throws {
        var d = try PNGCodec.encode(RGBImage(width: 1, height: 1, pixels: [1, 2, 3]))
        // IHDR data starts at byte 16: width, height (big endian); then fix the chunk CRC.
        let be: (UInt32) -> [UInt8] = { v in [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
        d.replaceSubrange(16..<20, with: be(100_000)); d.replaceSubrange(20..<24, with: be(100_000))
        var crc: UInt32 = 0xFFFF_FFFF
        for b in d[12..<29] {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        d.replaceSubrange(29..<33, with: be(~crc))
        let path = dir + "troupe-huge-\(getpid()).png"
        try d.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try PNGCodec.read(path: path)) { e in
            XCTAssertEqual(e as? PNGError, .tooLarge(file: path, width: 100_000, height: 100_000, limit: PNGCodec.maxPixels))
        }
    }
}
