// A rectangle of terminal cells, and the splits a split-pane layout is made of. Layouts are
// recomputed from the screen size on every draw, so a resize (SIGWINCH) simply reflows.

public struct Rect: Equatable, Sendable {
    public var x: Int, y: Int, width: Int, height: Int

    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x; self.y = y; self.width = max(0, width); self.height = max(0, height)
    }

    public var isEmpty: Bool { width <= 0 || height <= 0 }
    public var maxX: Int { x + width }
    public var maxY: Int { y + height }

    public func contains(x px: Int, y py: Int) -> Bool { px >= x && px < maxX && py >= y && py < maxY }

    /// The rectangle shrunk by `dx` columns and `dy` rows on every side.
    public func inset(_ dx: Int, _ dy: Int) -> Rect { Rect(x: x + dx, y: y + dy, width: width - 2 * dx, height: height - 2 * dy) }

    /// Left part `columns` wide (clamped) and the rest, with `gap` columns between.
    public func splitColumns(_ columns: Int, gap: Int = 1) -> (Rect, Rect) {
        let w = min(max(columns, 0), width)
        return (Rect(x: x, y: y, width: w, height: height), Rect(x: x + w + gap, y: y, width: width - w - gap, height: height))
    }

    /// Top part `rows` high (clamped) and the rest.
    public func splitRows(_ rows: Int, gap: Int = 0) -> (Rect, Rect) {
        let h = min(max(rows, 0), height)
        return (Rect(x: x, y: y, width: width, height: h), Rect(x: x, y: y + h + gap, width: width, height: height - h - gap))
    }

    /// Bottom part `rows` high (clamped) and the rest above it.
    public func splitBottom(_ rows: Int) -> (rest: Rect, bottom: Rect) {
        let h = min(max(rows, 0), height)
        return (Rect(x: x, y: y, width: width, height: height - h), Rect(x: x, y: maxY - h, width: width, height: h))
    }

    /// A rectangle of at most `w`×`h` centred in this one.
    public func centered(width w: Int, height h: Int) -> Rect {
        let cw = min(w, width), ch = min(h, height)
        return Rect(x: x + (width - cw) / 2, y: y + (height - ch) / 2, width: cw, height: ch)
    }
}
