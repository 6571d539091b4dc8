// An image in a pane. The pane reserves its cells; then either the cells are drawn as half
// blocks (two pixels a cell, the image resampled to fit), or, on a sixel terminal, the pane
// is left blank and the caller writes the sixel bytes at `origin` after curses has refreshed
// (TerminalSession.writeRaw). The TUI knows cells and pixels, not PNG or models.

public struct ImageBitmap: Sendable, Equatable {
    public let width: Int, height: Int
    /// RGB, row-major, 3 bytes a pixel.
    public let pixels: [UInt8]
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "ImageBitmap: \(pixels.count) bytes for \(width)×\(height) RGB")
        self.width = width; self.height = height; self.pixels = pixels
    }
    func pixel(_ x: Int, _ y: Int) -> Pixel {
        let i = (y * width + x) * 3
        return Pixel(pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

public enum ImagePane {
    /// The cells an image of `w`×`h` pixels takes in half blocks inside `rect`, keeping its
    /// aspect ratio (a cell is one pixel wide and two high), never enlarged past `maxScale`.
    public static func blockSize(imageWidth w: Int, height h: Int, in rect: Rect, maxScale: Int = 4) -> (columns: Int, rows: Int) {
        guard w > 0, h > 0, !rect.isEmpty else { return (0, 0) }
        let scale = min(Double(rect.width) / Double(w), Double(rect.height * 2) / Double(h), Double(maxScale))
        return (max(1, Int(Double(w) * scale)), max(1, Int(Double(h) * scale / 2)))
    }

    /// Draws `image` as half blocks centred in `rect` (nearest-neighbour resampling).
    public static func drawBlocks(_ image: ImageBitmap, _ canvas: Canvas, in rect: Rect) {
        let (cols, rows) = blockSize(imageWidth: image.width, height: image.height, in: rect)
        guard cols > 0, rows > 0 else { return }
        let ox = rect.x + (rect.width - cols) / 2, oy = rect.y + (rect.height - rows) / 2
        for cy in 0..<rows {
            for cx in 0..<cols {
                let sx = min(image.width - 1, cx * image.width / cols)
                let syTop = min(image.height - 1, (2 * cy) * image.height / (2 * rows))
                let syBottom = min(image.height - 1, (2 * cy + 1) * image.height / (2 * rows))
                canvas.imageCell(x: ox + cx, y: oy + cy, top: image.pixel(sx, syTop), bottom: image.pixel(sx, syBottom))
            }
        }
    }

    /// Pixel size and cell origin for a sixel image of `w`×`h` fitted into `rect` with cells of
    /// `cell` pixels (integer enlargement keeps small sprites crisp).
    public static func sixelPlacement(imageWidth w: Int, height h: Int, in rect: Rect, cell: (width: Int, height: Int))
        -> (width: Int, height: Int, x: Int, y: Int)? {
        guard w > 0, h > 0, rect.width > 0, rect.height > 0, cell.width > 0, cell.height > 0 else { return nil }
        let maxW = rect.width * cell.width, maxH = rect.height * cell.height
        let s = min(Double(maxW) / Double(w), Double(maxH) / Double(h))
        guard s > 0 else { return nil }
        let scale = s >= 1 ? Double(Int(s)) : s
        let pw = max(1, Int(Double(w) * scale)), ph = max(1, Int(Double(h) * scale))
        let cols = (pw + cell.width - 1) / cell.width, rows = (ph + cell.height - 1) / cell.height
        return (pw, ph, rect.x + max(0, (rect.width - cols) / 2), rect.y + max(0, (rect.height - rows) / 2))
    }
}
