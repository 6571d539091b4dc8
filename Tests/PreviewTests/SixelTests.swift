// Sixel through libsixel: encode → decode back ≈ the source, and scaling to a cell
// rectangle gives the expected pixel size.

import XCTest
@testable import Preview

final class SixelTests: XCTestCase {
    /// A smooth test image with distinct regions: gradients plus solid corners.
    static func testImage(_ w: Int, _ h: Int) -> RGBImage {
        var p = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            for x in 0..<w {
                let i = (y * w + x) * 3
                p[i] = UInt8(x * 255 / max(w - 1, 1)); p[i + 1] = UInt8(y * 255 / max(h - 1, 1)); p[i + 2] = UInt8((x + y) * 255 / max(w + h - 2, 1))
                if x < w / 4 && y < h / 4 { p[i] = 255; p[i + 1] = 0; p[i + 2] = 0 }
            }
        }
        return RGBImage(width: w, height: h, pixels: p)
    }

    func meanAbsError(_ a: RGBImage, _ b: RGBImage) -> Double {
        zip(a.pixels, b.pixels).reduce(0.0) { $0 + Double(abs(Int($1.0) - Int($1.1))) } / Double(a.pixels.count)
    }

    func testEncodeDecodeRoundTrip() throws {
        let img = Self.testImage(96, 60)
        let bytes = try Sixel.encode(img)
        XCTAssertEqual(Array(bytes.prefix(2)), [0x1B, 0x50], "starts with DCS")       // ESC P
        XCTAssertEqual(Array(bytes.suffix(2)), [0x1B, 0x5C], "ends with ST")          // ESC \
        let back = try Sixel.decode(bytes)
        XCTAssertEqual(back.width, 96); XCTAssertEqual(back.height, 60)
        // 256-colour palette + diffusion on a smooth image: mean error a few levels of 255.
        XCTAssertLessThan(meanAbsError(back, img), 6.0)
        // The solid red corner stays red (sixel registers are percentages, the palette a box mean).
        XCTAssertGreaterThan(back.pixels[0], 235); XCTAssertLessThan(back.pixels[1], 20); XCTAssertLessThan(back.pixels[2], 20)
    }

    func testFewerColourRegistersStillDecode() throws {
        let img = Self.testImage(40, 30)
        let back = try Sixel.decode(try Sixel.encode(img, colors: 16))
        XCTAssertEqual(back.width, 40)
        XCTAssertLessThan(meanAbsError(back, img), 20.0)
    }

    func testScalingToACellRectangle() throws {
        // 64×64 image into 20×10 cells of 10×20 px: the limiting side is the width (200 px).
        let (w, h) = Sixel.fit(width: 64, height: 64, maxWidth: 20 * 10, maxHeight: 10 * 20)
        XCTAssertEqual(w, 200); XCTAssertEqual(h, 200)
        let scaled = try Sixel.scaled(Self.testImage(64, 64), width: w, height: h)
        XCTAssertEqual(scaled.width, 200); XCTAssertEqual(scaled.height, 200)
        let back = try Sixel.decode(try Sixel.encode(scaled))
        XCTAssertEqual(back.width, 200); XCTAssertEqual(back.height, 200)
        let (w2, h2) = Sixel.fit(width: 512, height: 256, maxWidth: 300, maxHeight: 300)
        XCTAssertEqual(w2, 300); XCTAssertEqual(h2, 150)
    }

    func testAlphaIsCompositedOverTheBackground() {
        let img = RGBImage(width: 1, height: 1, channels: 4, pixels: [255, 255, 255, 128])
        XCTAssertEqual(Sixel.rgb(img).pixels, [128, 128, 128])
    }
}
