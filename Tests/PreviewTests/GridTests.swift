// Grids: layout, labels drawn with the bitmap font, scores, and a golden check of the
// composed pixels (cell positions hold the source images, enlarged).

import Foundation
import XCTest
@testable import Preview

final class GridTests: XCTestCase {
    static func solid(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ s: Int = 8) -> RGBImage {
        RGBImage(width: s, height: s, pixels: Array((0..<(s * s)).flatMap { _ in [r, g, b] }))
    }

    func testLayoutLabelsAndScores() throws {
        let cells: [[RGBImage?]] = [[Self.solid(255, 0, 0), Self.solid(0, 255, 0)], [Self.solid(0, 0, 255), nil]]
        let g = Grid(cells: cells, rowLabels: ["knight", "wizard"], columnLabels: ["front", "side"], scores: [[0.91, 0.5], [1.0, nil]])
        let img = g.compose(enlarge: 4)
        // left margin = "knight"/"wizard" (6 glyphs × 6 px) + 2 × 4 px; top = 11 + 8
        let left = 6 * 6 + 8, top = 11 + 8, cell = 32, stepX = cell + 4, stepY = cell + 11 + 4 + 4
        XCTAssertEqual(img.width, left + 2 * stepX)
        XCTAssertEqual(img.height, top + 2 * stepY)
        func px(_ x: Int, _ y: Int) -> [UInt8] { Array(img.pixels[((y * img.width + x) * 3)..<((y * img.width + x) * 3 + 3)]) }
        XCTAssertEqual(px(left + 5, top + 5), [255, 0, 0])
        XCTAssertEqual(px(left + stepX + 31, top + 31), [0, 255, 0])
        XCTAssertEqual(px(left + 10, top + stepY + 10), [0, 0, 255])
        XCTAssertEqual(px(left + stepX + 10, top + stepY + 10), [28, 28, 36], "empty cell is background")
        // Text was drawn: label rows and the score line contain light pixels.
        func lightPixels(_ y0: Int, _ y1: Int, _ x0: Int, _ x1: Int) -> Int {
            var n = 0
            for y in y0..<y1 { for x in x0..<x1 where px(x, y) == [235, 235, 235] { n += 1 } }
            return n
        }
        XCTAssertGreaterThan(lightPixels(4, 15, left, left + cell), 10, "column label 'front'")
        XCTAssertGreaterThan(lightPixels(top, top + cell, 0, left), 10, "row label 'knight'")
        XCTAssertGreaterThan(lightPixels(top + cell, top + cell + 15, left, left + cell), 5, "score 0.91")
        // Save and read back through PNG.
        let path = NSTemporaryDirectory() + "troupe-grid-\(getpid()).png"
        try PNGCodec.write(img, to: path)
        XCTAssertEqual(try PNGCodec.read(path: path), img)
    }

    /// A two-line column label: the top margin holds both lines, each drawn.
    func testMultiLineColumnLabels() {
        let g = Grid(cells: [[Self.solid(255, 0, 0)]], columnLabels: ["v 0.5\nIC 0.61"])
        let img = g.compose(enlarge: 4)
        let top = 2 * 11 + 8
        XCTAssertEqual(img.height, top + 32 + 4)
        func light(_ y0: Int, _ y1: Int) -> Int {
            var n = 0
            for y in y0..<y1 { for x in 0..<img.width where img.pixels[(y * img.width + x) * 3] == 235 { n += 1 } }
            return n
        }
        XCTAssertGreaterThan(light(4, 15), 5, "first line")
        XCTAssertGreaterThan(light(15, 26), 5, "second line")
        XCTAssertEqual(Array(img.pixels[((top + 5) * img.width + 9) * 3..<((top + 5) * img.width + 9) * 3 + 3]), [255, 0, 0])
    }

    func testTextWidthAndUnknownCharacters() {
        XCTAssertEqual(BitmapText.width("abc"), 18)
        var img = RGBImage(width: 20, height: 12)
        BitmapText.draw("é", into: &img, x: 0, y: 0)   // drawn as '?'
        XCTAssertTrue(img.pixels.contains(235))
    }
}
