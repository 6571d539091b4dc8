// A one-line text editor with a cursor and history: ←/→ Home/End (^A/^E), Backspace/Del,
// ^U clears, ^W deletes a word, ↑/↓ step through earlier entries. Long text scrolls so the
// cursor stays in view.

public struct TextField: Sendable {
    public var label: String
    public private(set) var text: String
    public var history: [String] = []
    private var cursor: Int            // in characters
    private var historyIndex: Int?
    private var scroll = 0
    private var rect = Rect(x: 0, y: 0, width: 0, height: 0)

    public init(_ label: String, text: String = "") {
        self.label = label; self.text = text; cursor = text.count
    }

    public mutating func set(_ t: String) { text = t; cursor = t.count; historyIndex = nil }

    /// Remembers the current text in the history (a submitted prompt).
    public mutating func commit() {
        if !text.isEmpty && history.last != text { history.append(text) }
        if history.count > 100 { history.removeFirst(history.count - 100) }
        historyIndex = nil
    }

    public func contains(x: Int, y: Int) -> Bool { rect.contains(x: x, y: y) }

    /// Handles `key`; returns whether the text changed.
    public mutating func handle(_ key: Key) -> Bool {
        var chars = Array(text)
        let old = text
        switch key {
        case .char(let c): chars.insert(c, at: cursor); cursor += 1
        case .backspace: if cursor > 0 { chars.remove(at: cursor - 1); cursor -= 1 }
        case .delete, .ctrl("d"): if cursor < chars.count { chars.remove(at: cursor) }
        case .left, .ctrl("b"): cursor = max(0, cursor - 1)
        case .right, .ctrl("f"): cursor = min(chars.count, cursor + 1)
        case .home, .ctrl("a"): cursor = 0
        case .end, .ctrl("e"): cursor = chars.count
        case .ctrl("u"): chars.removeAll(); cursor = 0
        case .ctrl("w"):
            var i = cursor
            while i > 0 && chars[i - 1] == " " { i -= 1 }
            while i > 0 && chars[i - 1] != " " { i -= 1 }
            chars.removeSubrange(i..<cursor); cursor = i
        case .up:
            guard !history.isEmpty else { return false }
            let i = max(0, (historyIndex ?? history.count) - 1)
            historyIndex = i; chars = Array(history[i]); cursor = chars.count
        case .down:
            guard let h = historyIndex else { return false }
            if h + 1 < history.count { historyIndex = h + 1; chars = Array(history[h + 1]) } else { historyIndex = nil; chars = [] }
            cursor = chars.count
        case .mouse(let m) where rect.contains(x: m.x, y: m.y):
            cursor = min(chars.count, scroll + max(0, m.x - rect.x))
        default: return false
        }
        text = String(chars)
        return text != old
    }

    /// "label: text" on one row; the cursor shows as a reverse cell when `editing`.
    public mutating func draw(_ canvas: Canvas, in r: Rect, focused: Bool, editing: Bool, labelWidth: Int = 10) {
        guard r.height >= 1, r.width > labelWidth + 2 else { return }
        canvas.text(TextWidth.pad(label, to: labelWidth), x: r.x, y: r.y, role: focused ? .focus : .text)
        rect = Rect(x: r.x + labelWidth, y: r.y, width: r.width - labelWidth, height: 1)
        let chars = Array(text)
        if !editing { scroll = 0 }   // at rest a field shows its beginning
        if cursor < scroll { scroll = cursor }
        while editing && scroll < cursor && TextWidth.of(String(chars[scroll..<cursor])) >= rect.width { scroll += 1 }
        let shown = String(chars[min(scroll, chars.count)...])
        canvas.fill(rect, role: editing ? .status : .text)
        canvas.text(shown, x: rect.x, y: r.y, role: editing ? .status : (focused ? .accent : .text), maxWidth: rect.width)
        if editing {
            let cx = rect.x + TextWidth.of(String(chars[min(scroll, chars.count)..<cursor]))
            if cx < rect.maxX { canvas.text(cursor < chars.count ? String(chars[cursor]) : " ", x: cx, y: r.y, role: .selection) }
        }
    }
}
