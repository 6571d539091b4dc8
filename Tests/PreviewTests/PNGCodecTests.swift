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
