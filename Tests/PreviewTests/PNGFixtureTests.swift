// PNGs written by Pillow (tools/fixtures/png.py): every pixel kind decodes to the RGB(A)
// Pillow reports, and an A1111 `parameters` chunk parses into the generation settings.

import Foundation
import XCTest
@testable import Preview

final class PNGFixtureTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static var expected: [String: Any] = {
        let data = try! Data(contentsOf: dir.appendingPathComponent("expected.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    func testEveryPixelKindDecodes() throws {
        let images = Self.expected["images"] as! [String: [String: Any]]
        XCTAssertEqual(images.count, 8)
        for (name, e) in images.sorted(by: { $0.key < $1.key }) {
            let img = try PNGCodec.read(path: Self.dir.appendingPathComponent(name).path)
            XCTAssertEqual(img.width, e["width"] as? Int, name)
            XCTAssertEqual(img.height, e["height"] as? Int, name)
            XCTAssertEqual(img.channels, e["channels"] as? Int, name)
            let want = (e["pixels"] as! [Int]), got = img.pixels.map(Int.init)
            XCTAssertEqual(got.count, want.count, name)
            // 16-bit → 8-bit may round either way; everything else is exact.
            let tol = name == "rgb16.png" ? 1 : 0
            XCTAssertLessThanOrEqual(zip(got, want).map { abs($0 - $1) }.max() ?? 0, tol, name)
        }
    }

    func testA1111ParametersChunkParses() throws {
        let text = try PNGCodec.readText(path: Self.dir.appendingPathComponent("a1111.png").path)
        let raw = try XCTUnwrap(text.first { $0.0 == "parameters" }?.1)
        XCTAssertEqual(raw, Self.expected["parameters"] as? String)
        let p = GenerationParameters(text: raw)
        XCTAssertEqual(p.prompt, "a knight, red sword, (masterpiece:1.2)\nsecond line of prompt")
        XCTAssertEqual(p.negativePrompt, "blurry, low quality")
        XCTAssertEqual(p.steps, 25); XCTAssertEqual(p.sampler, "DPM++ 2M Karras"); XCTAssertEqual(p.cfgScale, 7.5)
        XCTAssertEqual(p.seed, 1234567890); XCTAssertEqual(p.width, 512); XCTAssertEqual(p.height, 768)
        XCTAssertEqual(p.model, "v1-5-pruned"); XCTAssertEqual(p.clipSkip, 2)
        XCTAssertEqual(p.extra.map { $0.0 }, ["Model hash", "Lora hashes", "Version"])
        XCTAssertEqual(p.extra[1].1, "a: 1, b: 2")
    }

    func testWriteWithParametersRoundTrips() throws {
        var p = GenerationParameters(prompt: "a wizard, \"quoted\", ünïcode ✨")
        p.negativePrompt = "bad hands"; p.steps = 30; p.sampler = "Euler a"; p.cfgScale = 6
        p.seed = 42; p.width = 64; p.height = 64; p.model = "troupe-mini"; p.clipSkip = 2
        p.extra = [("Troupe character", "Sir Reginald, the Bold"), ("Troupe v", "0.8")]
        let img = RGBImage(width: 3, height: 2, pixels: (0..<18).map { UInt8($0 * 10) })
        let path = NSTemporaryDirectory() + "troupe-params-\(getpid()).png"
        try PNGCodec.write(img, to: path, text: [(GenerationParameters.chunkKey, p.text)])
        XCTAssertEqual(try PNGCodec.read(path: path), img)
        let back = try PNGCodec.readText(path: path)
        XCTAssertEqual(back.count, 1)
        XCTAssertEqual(GenerationParameters(text: back[0].1), p)
    }

    func testUnwritablePathIsAClearError() {
        let img = RGBImage(width: 1, height: 1, pixels: [1, 2, 3])
        XCTAssertThrowsError(try PNGCodec.write(img, to: "/nonexistent-dir/x.png")) { e in
            XCTAssertTrue("\(e)".contains("/nonexistent-dir/x.png"), "\(e)")
        }
    }
}
