// The 3×3 same-padding im2col fast path against the general row fill, on shapes that take
// each path (batched small images, one large image) and on degenerate widths and heights.

import XCTest
@testable import Pipeline

final class Im2ColTests: XCTestCase {
    func generalFill(_ x: UnsafePointer<Float>, count: Int, _ g: ConvGeometry, ld: Int) -> [Float] {
        var col = [Float](repeating: .nan, count: g.k * ld)
        col.withUnsafeMutableBufferPointer { c in
            for row in 0..<g.k { for i in 0..<count {
                Im2Col.fillRow(row, x + i * g.channels * g.height * g.width, g, dst: c.baseAddress! + row * ld + i * g.n, rows: 0..<g.outH)
            } }
        }
        return col
    }

    func testSame3x3FastPathMatchesGeneralFill() {
        for (c, h, w, count) in [(3, 7, 6, 2), (5, 16, 16, 8), (2, 40, 33, 1), (4, 1, 1, 3), (2, 1, 5, 2), (3, 6, 1, 2)] {
            let g = ConvGeometry(channels: c, height: h, width: w, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1)
            XCTAssertTrue(Im2Col.isSame3x3(g))
            let x = (0..<(count * c * h * w)).map { Float($0 % 97) - 40 }
            x.withUnsafeBufferPointer { xp in
                let ld = g.n * count
                let want = generalFill(xp.baseAddress!, count: count, g, ld: ld)
                var got = [Float](repeating: .nan, count: g.k * ld)
                got.withUnsafeMutableBufferPointer { Im2Col.fill(batch: xp.baseAddress!, count: count, g, col: $0.baseAddress!, ld: ld) }
                XCTAssertEqual(got, want, "batched fill, \(count)×\(c)×\(h)×\(w)")
                if count == 1 {
                    var single = [Float](repeating: .nan, count: g.k * g.n)
                    single.withUnsafeMutableBufferPointer { Im2Col.fill(xp.baseAddress!, g, col: $0.baseAddress!, ld: g.n) }
                    XCTAssertEqual(single, want, "single-image fill, \(c)×\(h)×\(w)")
                }
            }
        }
    }
}

extension Im2ColTests {
    /// col2im's fast path against a scalar scatter-add of the same column matrix.
    func testSame3x3AccumulateMatchesScatter() {
        for (c, h, w, band) in [(3, 7, 6, 0..<7), (2, 16, 16, 0..<16), (2, 9, 5, 3..<7), (1, 1, 1, 0..<1), (2, 1, 4, 0..<1)] {
            let g = ConvGeometry(channels: c, height: h, width: w, kernelH: 3, kernelW: 3, strideH: 1, strideW: 1, padH: 1, padW: 1)
            let ld = band.count * w
            let col = (0..<(g.k * ld)).map { Float(($0 * 7) % 31) - 15 }
            var want = [Float](repeating: 1, count: c * h * w)
            for ch in 0..<c { for ky in 0..<3 { for kx in 0..<3 { for oy in band { for ox in 0..<w {
                let iy = oy - 1 + ky, ix = ox - 1 + kx
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                want[(ch * h + iy) * w + ix] += col[(ch * 9 + ky * 3 + kx) * ld + (oy - band.lowerBound) * w + ox]
            } } } } }
            var got = [Float](repeating: 1, count: c * h * w)
            col.withUnsafeBufferPointer { cp in
                got.withUnsafeMutableBufferPointer { Im2Col.accumulate(cp.baseAddress!, ld: ld, g, into: $0.baseAddress!, rows: band) }
            }
            XCTAssertEqual(got, want, "\(c)×\(h)×\(w) rows \(band)")
        }
    }
}
