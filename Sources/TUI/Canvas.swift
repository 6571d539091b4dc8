// Where widgets draw: text in a role, filled areas, and image cells (a half block: the top
// pixel in the foreground colour, the bottom one in the background). The curses screen is one
// canvas; `TextCanvas` is another, in memory, so widgets and screens are tested without a
// terminal.

public struct Pixel: Equatable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
}

public protocol Canvas: AnyObject {
    var width: Int { get }
    var height: Int { get }
    /// Draws `text` from (x, y), clipped at the canvas edge and at `maxWidth` cells.
    func text(_ text: String, x: Int, y: Int, role: Role, maxWidth: Int?)
    /// Fills `rect` with spaces in `role`.
    func fill(_ rect: Rect, role: Role)
    /// One image cell: "▀" with `top` over `bottom` (or the nearest the terminal can show).
    func imageCell(x: Int, y: Int, top: Pixel, bottom: Pixel)
}

public extension Canvas {
    func text(_ s: String, x: Int, y: Int, role: Role = .text) { text(s, x: x, y: y, role: role, maxWidth: nil) }
    var bounds: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    /// A frame with a title on its top edge; returns the inside.
    @discardableResult
    func box(_ r: Rect, title: String? = nil, focused: Bool = false) -> Rect {
        guard r.width >= 2, r.height >= 2 else { return Rect(x: r.x, y: r.y, width: 0, height: 0) }
        let role: Role = focused ? .focus : .border
        text("┌" + String(repeating: "─", count: r.width - 2) + "┐", x: r.x, y: r.y, role: role)
        for yy in (r.y + 1)..<(r.maxY - 1) { text("│", x: r.x, y: yy, role: role); text("│", x: r.maxX - 1, y: yy, role: role) }
        text("└" + String(repeating: "─", count: r.width - 2) + "┘", x: r.x, y: r.maxY - 1, role: role)
        if let title, r.width > 4 { text(" \(title) ", x: r.x + 1, y: r.y, role: focused ? .focus : .title, maxWidth: r.width - 2) }
        return r.inset(1, 1)
    }
}

/// An in-memory canvas: every cell's character and role, read back as lines.
public final class TextCanvas: Canvas {
    public let width: Int, height: Int
    public private(set) var cells: [[String]]
    public private(set) var roles: [[Role]]
    public private(set) var imageCells = 0

    public init(width: Int, height: Int) {
        self.width = width; self.height = height
        cells = Array(repeating: Array(repeating: " ", count: width), count: height)
        roles = Array(repeating: Array(repeating: .text, count: width), count: height)
    }

    public func text(_ s: String, x: Int, y: Int, role: Role, maxWidth: Int?) {
        guard y >= 0, y < height else { return }
        var cx = x
        let limit = min(width, maxWidth.map { x + $0 } ?? width)
        for scalar in s.unicodeScalars {
            let w = TextWidth.of(scalar)
            if w == 0 { continue }
            if cx + w > limit { break }
            if cx >= 0 {
                cells[y][cx] = String(scalar); roles[y][cx] = role
                if w == 2, cx + 1 < width { cells[y][cx + 1] = ""; roles[y][cx + 1] = role }
            }
            cx += w
        }
    }

    public func fill(_ r: Rect, role: Role) {
        for yy in max(0, r.y)..<min(height, r.maxY) { for xx in max(0, r.x)..<min(width, r.maxX) { cells[yy][xx] = " "; roles[yy][xx] = role } }
    }

    public func imageCell(x: Int, y: Int, top: Pixel, bottom: Pixel) {
        guard x >= 0, x < width, y >= 0, y < height else { return }
        cells[y][x] = "▀"; imageCells += 1
    }

    public var lines: [String] { cells.map { $0.joined() } }
    public var string: String { lines.joined(separator: "\n") }
    public func role(at x: Int, _ y: Int) -> Role { roles[y][x] }
}
