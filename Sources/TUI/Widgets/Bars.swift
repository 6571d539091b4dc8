// The thin widgets: tabs along the top, the status bar with the current screen's key hints,
// a progress bar and a button. Each remembers where it was drawn so clicks find it.

public struct Tabs: Sendable {
    public var titles: [String]
    public var selected = 0
    private var spans: [(Int, Int)] = []
    private var row = -1

    public init(_ titles: [String]) { self.titles = titles }

    public mutating func draw(_ canvas: Canvas, in r: Rect) {
        canvas.fill(Rect(x: r.x, y: r.y, width: r.width, height: 1), role: .status)
        var x = r.x + 1
        spans = []; row = r.y
        for (i, t) in titles.enumerated() {
            let label = " \(i + 1) \(t) "
            let w = TextWidth.of(label)
            if x + w > r.maxX { break }
            canvas.text(label, x: x, y: r.y, role: i == selected ? .selection : .status)
            spans.append((x, x + w)); x += w + 1
        }
    }

    /// The tab a click at (x, y) lands on.
    public func tab(atX x: Int, y: Int) -> Int? {
        guard y == row else { return nil }
        return spans.firstIndex { x >= $0.0 && x < $0.1 }
    }
}

public enum StatusBar {
    /// Key hints ("n new  d delete  ? keys") and a message on the right. Hints come first (a
    /// message may take at most a third of the bar away from them); the message gets the rest.
    public static func draw(_ canvas: Canvas, in r: Rect, hints: [(String, String)], message: String = "", messageRole: Role = .status) {
        canvas.fill(r, role: .status)
        var x = r.x + 1
        let reserved = message.isEmpty ? 0 : min(TextWidth.of(message) + 2, r.width / 3)
        for (key, hint) in hints {
            let w = TextWidth.of(key) + 1 + TextWidth.of(hint) + 2
            if x + w > r.maxX - reserved { break }
            canvas.text(key, x: x, y: r.y, role: .statusKey)
            canvas.text(hint, x: x + TextWidth.of(key) + 1, y: r.y, role: .status)
            x += w
        }
        if !message.isEmpty {
            let m = TextWidth.clip(message, to: max(0, r.maxX - x - 2), ellipsis: true)
            canvas.text(m, x: r.maxX - TextWidth.of(m) - 1, y: r.y, role: messageRole)
        }
    }
}

public enum ProgressBar {
    /// "████████░░░░  42%" across `r`.
    public static func draw(_ canvas: Canvas, in r: Rect, fraction: Double, label: String = "") {
        guard r.width > 8 else { return }
        let f = min(max(fraction.isFinite ? fraction : 0, 0), 1)
        let pct = String(format: "%3d%%", Int((f * 100).rounded(.down)))
        let tail = (label.isEmpty ? "" : " " + label) + " " + pct
        let barWidth = max(1, r.width - TextWidth.of(tail))
        let filled = Int((f * Double(barWidth)).rounded(.down))
        canvas.text(String(repeating: "█", count: filled), x: r.x, y: r.y, role: .accent)
        canvas.text(String(repeating: "░", count: barWidth - filled), x: r.x + filled, y: r.y, role: .dim)
        canvas.text(tail, x: r.x + barWidth, y: r.y, role: .text, maxWidth: r.width - barWidth)
    }
}

public struct Button: Sendable {
    public var title: String
    private var rect = Rect(x: 0, y: 0, width: 0, height: 0)
    public init(_ title: String) { self.title = title }

    public var width: Int { TextWidth.of(title) + 4 }

    public mutating func draw(_ canvas: Canvas, x: Int, y: Int, focused: Bool) {
        rect = Rect(x: x, y: y, width: width, height: 1)
        canvas.text("[ \(title) ]", x: x, y: y, role: focused ? .selection : .accent)
    }

    public func isClicked(by key: Key) -> Bool {
        if case .mouse(let m) = key, m.kind == .click || m.kind == .press { return rect.contains(x: m.x, y: m.y) }
        return false
    }
}
