// What colours a terminal can show, and the mapping of a theme's or an image's colours onto
// them: direct colour (xterm-direct: the colour number is 0xRRGGBB), the xterm 256-colour
// palette, 16 or 8 ANSI colours, or none (NO_COLOR, vt100: roles become bold/reverse/dim).

public enum ColorDepth: Equatable, Sendable {
    case none, ansi8, ansi16, indexed256, direct

    public init(colors: Int, noColor: Bool) {
        if noColor || colors < 8 { self = .none }
        else if colors >= 1 << 24 { self = .direct }
        else if colors >= 256 { self = .indexed256 }
        else if colors >= 16 { self = .ansi16 }
        else { self = .ansi8 }
    }

    /// The terminal colour number for `c` (-1: the terminal's default).
    public func number(_ c: ThemeColor) -> Int {
        switch (self, c) {
        case (.none, _), (_, .terminalDefault): return -1
        case (.direct, .rgb(let r, let g, let b)): return Int(r) << 16 | Int(g) << 8 | Int(b)
        case (.direct, .indexed(let i)):
            let (r, g, b) = Palette.rgb(i); return Int(r) << 16 | Int(g) << 8 | Int(b)
        case (.indexed256, .indexed(let i)): return i
        case (.indexed256, .rgb(let r, let g, let b)): return Palette.nearest(r, g, b, among: 256)
        case (.ansi16, .indexed(let i)) where i < 16: return i
        case (.ansi8, .indexed(let i)) where i < 8: return i
        case (.ansi8, .indexed(let i)) where i < 16: return i - 8
        case (.ansi16, .indexed(let i)):
            let (r, g, b) = Palette.rgb(i); return Palette.nearest(r, g, b, among: 16)
        case (.ansi8, .indexed(let i)):
            let (r, g, b) = Palette.rgb(i); return Palette.nearest(r, g, b, among: 8)
        case (.ansi16, .rgb(let r, let g, let b)): return Palette.nearest(r, g, b, among: 16)
        case (.ansi8, .rgb(let r, let g, let b)): return Palette.nearest(r, g, b, among: 8)
        }
    }

    /// The colour number for an image pixel.
    public func number(r: UInt8, g: UInt8, b: UInt8) -> Int { number(.rgb(r, g, b)) }
}

/// The xterm palette: 16 ANSI colours, a 6×6×6 cube and a 24-step grey ramp.
public enum Palette {
    static let ansi: [(UInt8, UInt8, UInt8)] = [
        (0, 0, 0), (205, 0, 0), (0, 205, 0), (205, 205, 0), (0, 0, 238), (205, 0, 205), (0, 205, 205), (229, 229, 229),
        (127, 127, 127), (255, 0, 0), (0, 255, 0), (255, 255, 0), (92, 92, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]
    static let cubeLevels: [UInt8] = [0, 95, 135, 175, 215, 255]

    public static func rgb(_ i: Int) -> (UInt8, UInt8, UInt8) {
        switch i {
        case 0..<16: return ansi[i]
        case 16..<232:
            let n = i - 16
            return (cubeLevels[n / 36], cubeLevels[(n / 6) % 6], cubeLevels[n % 6])
        default:
            let v = UInt8(8 + 10 * (min(max(i, 232), 255) - 232)); return (v, v, v)
        }
    }

    /// Nearest of the first `count` palette entries for 8/16; for 256, the nearer of the
    /// cube's and the grey ramp's candidates (the ANSI 16 vary between terminals, so images
    /// avoid them).
    public static func nearest(_ r: UInt8, _ g: UInt8, _ b: UInt8, among count: Int) -> Int {
        func d(_ c: (UInt8, UInt8, UInt8)) -> Int {
            let dr = Int(c.0) - Int(r), dg = Int(c.1) - Int(g), db = Int(c.2) - Int(b)
            return 2 * dr * dr + 4 * dg * dg + 3 * db * db
        }
        if count < 256 { return (0..<count).min { d(ansi[$0]) < d(ansi[$1]) }! }
        func level(_ v: UInt8) -> Int { cubeLevels.indices.min { abs(Int(cubeLevels[$0]) - Int(v)) < abs(Int(cubeLevels[$1]) - Int(v)) }! }
        let cube = 16 + 36 * level(r) + 6 * level(g) + level(b)
        let grey = 232 + min(23, max(0, (Int(r) + Int(g) + Int(b)) / 3 - 3) / 10)
        return d(rgb(cube)) <= d(rgb(grey)) ? cube : grey
    }
}
