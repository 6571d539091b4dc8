// Consistency grids: images in rows × columns with row labels on the left, column labels
// on top, and an optional score under each cell, composed into one RGB image (saved as PNG,
// previewed in the terminal). Cells are enlarged by whole factors (pixel art stays sharp).

public struct Grid {
    public var cells: [[RGBImage?]]
    public var rowLabels: [String]
    public var columnLabels: [String]
    /// Shown under each image when given, e.g. identity consistency.
    public var scores: [[Double?]]?
    public var background: (UInt8, UInt8, UInt8) = (28, 28, 36)

    public init(cells: [[RGBImage?]], rowLabels: [String] = [], columnLabels: [String] = [], scores: [[Double?]]? = nil) {
        self.cells = cells; self.rowLabels = rowLabels; self.columnLabels = columnLabels; self.scores = scores
    }

    /// The composed image; each cell `enlarge`× its largest image.
    public func compose(enlarge: Int = 1) -> RGBImage {
        let rows = cells.count, cols = cells.map(\.count).max() ?? 0
        let all = cells.flatMap { $0 }.compactMap { $0 }
        let cellW = (all.map(\.width).max() ?? 16) * enlarge, cellH = (all.map(\.height).max() ?? 16) * enlarge
        let text = cellW >= 160 ? 2 : 1
        let lineH = BitmapText.glyphHeight * text
        let pad = 4 * text
        let left = rowLabels.isEmpty ? pad : (rowLabels.map { BitmapText.width($0, scale: text) }.max() ?? 0) + 2 * pad
        // A column label may have several lines ("\n"), each centred over its column.
        let labelLines = columnLabels.map { $0.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
        let top = columnLabels.isEmpty ? pad : (labelLines.map(\.count).max() ?? 1) * lineH + 2 * pad
        let scoreH = scores == nil ? 0 : lineH + pad
        let stepX = cellW + pad, stepY = cellH + scoreH + pad
        let width = left + cols * stepX, height = top + rows * stepY
        var out = RGBImage(width: width, height: height)
        for i in 0..<(width * height) {
            out.pixels[i * 3] = background.0; out.pixels[i * 3 + 1] = background.1; out.pixels[i * 3 + 2] = background.2
        }
        for (c, lines) in labelLines.enumerated() where c < cols {
            for (k, line) in lines.enumerated() {
                let x = left + c * stepX + max(0, (cellW - BitmapText.width(line, scale: text)) / 2)
                BitmapText.draw(line, into: &out, x: x, y: pad + k * lineH, scale: text)
            }
        }
        for r in 0..<rows {
            let y0 = top + r * stepY
            if r < rowLabels.count { BitmapText.draw(rowLabels[r], into: &out, x: pad, y: y0 + (cellH - lineH) / 2, scale: text) }
            for c in 0..<cells[r].count {
                let x0 = left + c * stepX
                if let img = cells[r][c] { blit(Sixel.rgb(img), into: &out, x: x0, y: y0, enlarge: enlarge) }
                if let s = scores?[safe: r]?[safe: c] ?? nil {
                    let label = String(format: "%.2f", s)
                    BitmapText.draw(label, into: &out, x: x0 + max(0, (cellW - BitmapText.width(label, scale: text)) / 2), y: y0 + cellH + pad / 2, scale: text)
                }
            }
        }
        return out
    }

    private func blit(_ img: RGBImage, into out: inout RGBImage, x: Int, y: Int, enlarge: Int) {
        for sy in 0..<(img.height * enlarge) {
            let dy = y + sy
            guard dy < out.height else { break }
            let srcRow = (sy / enlarge) * img.width
            for sx in 0..<(img.width * enlarge) {
                let dx = x + sx
                guard dx < out.width else { break }
                let s = (srcRow + sx / enlarge) * 3, d = (dy * out.width + dx) * 3
                out.pixels[d] = img.pixels[s]; out.pixels[d + 1] = img.pixels[s + 1]; out.pixels[d + 2] = img.pixels[s + 2]
            }
        }
    }
}

extension Array {
    subscript(safe i: Int) -> Element? { indices.contains(i) ? self[i] : nil }
}

import Foundation
