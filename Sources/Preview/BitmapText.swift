// Draws ASCII text into RGB images with the built-in 6×11 bitmap font (grid labels and
// scores; no font files or font libraries needed). Other characters draw as '?'.

public enum BitmapText {
    public static let glyphWidth = BitmapFontData.width, glyphHeight = BitmapFontData.height

    /// Width in pixels of `text` at `scale`.
    public static func width(_ text: String, scale: Int = 1) -> Int { text.unicodeScalars.count * glyphWidth * scale }

    /// Draws `text` with its top-left at (x, y); pixels outside the image are clipped.
    public static func draw(_ text: String, into img: inout RGBImage, x: Int, y: Int, scale: Int = 1,
                            color: (UInt8, UInt8, UInt8) = (235, 235, 235)) {
        var cx = x
        for s in text.unicodeScalars {
            let code = Int(s.value)
            let glyph = BitmapFontData.glyphs[(32...126).contains(code) ? code - 32 : Int(UInt8(ascii: "?")) - 32]
            for (row, mask) in glyph.enumerated() where mask != 0 {
                for col in 0..<glyphWidth where mask & (1 << (glyphWidth - 1 - col)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = cx + col * scale + dx, py = y + row * scale + dy
                            guard px >= 0, py >= 0, px < img.width, py < img.height else { continue }
                            let i = (py * img.width + px) * img.channels
                            img.pixels[i] = color.0; img.pixels[i + 1] = color.1; img.pixels[i + 2] = color.2
                        }
                    }
                }
            }
            cx += glyphWidth * scale
        }
    }
}
