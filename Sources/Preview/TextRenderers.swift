// Images as text for terminals without sixel: Unicode upper-half blocks (two pixel rows per
// cell: foreground = top, background = bottom) in 24-bit colour or the xterm 256-colour
// palette, and a plain ASCII luminance ramp for NO_COLOR / dumb terminals.

public enum TextRenderer {
    /// Nearest xterm-256 colour index (6×6×6 cube or the grey ramp).
    public static func xterm256(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Int {
        let levels = [0, 95, 135, 175, 215, 255]
        func nearest(_ v: Int) -> Int { levels.indices.min { abs(levels[$0] - v) < abs(levels[$1] - v) }! }
        let (ri, gi, bi) = (nearest(Int(r)), nearest(Int(g)), nearest(Int(b)))
        let cube = 16 + 36 * ri + 6 * gi + bi
        let cubeErr = sq(levels[ri] - Int(r)) + sq(levels[gi] - Int(g)) + sq(levels[bi] - Int(b))
        let avg = (Int(r) + Int(g) + Int(b)) / 3
        let gi2 = max(0, min(23, (avg - 8 + 5) / 10))
        let grey = 8 + 10 * gi2
        let greyErr = sq(grey - Int(r)) + sq(grey - Int(g)) + sq(grey - Int(b))
        return greyErr < cubeErr ? 232 + gi2 : cube
    }

    private static func sq(_ x: Int) -> Int { x * x }

    /// Half-block text of an RGB image (its height rounded up to even), one line per two rows.
    public static func blocks(_ img: RGBImage, trueColor: Bool) -> String {
        let src = Sixel.rgb(img)
        var out = ""
        out.reserveCapacity(src.width * src.height * 12)
        for y in stride(from: 0, to: src.height, by: 2) {
            var last = ""
            for x in 0..<src.width {
                let t = (y * src.width + x) * 3
                let b = y + 1 < src.height ? ((y + 1) * src.width + x) * 3 : t
                let p = src.pixels
                let code: String
                if trueColor {
                    code = "\u{1B}[38;2;\(p[t]);\(p[t + 1]);\(p[t + 2]);48;2;\(p[b]);\(p[b + 1]);\(p[b + 2])m"
                } else {
                    code = "\u{1B}[38;5;\(xterm256(p[t], p[t + 1], p[t + 2]));48;5;\(xterm256(p[b], p[b + 1], p[b + 2]))m"
                }
                if code != last { out += code; last = code }
                out += "▀"
            }
            out += "\u{1B}[0m\n"
        }
        return out
    }

    /// ASCII art (no colour): darker pixels get sparser characters.
    public static func ascii(_ img: RGBImage) -> String {
        let src = Sixel.rgb(img)
        let ramp = Array(" .:-=+*#%@")
        var out = ""
        for y in 0..<src.height {
            for x in 0..<src.width {
                let i = (y * src.width + x) * 3
                let lum = (299 * Int(src.pixels[i]) + 587 * Int(src.pixels[i + 1]) + 114 * Int(src.pixels[i + 2])) / 1000
                out.append(ramp[lum * (ramp.count - 1) / 255])
            }
            out += "\n"
        }
        return out
    }
}
