// A scrolling list with a selection and an incremental filter ('/' then type: items whose text
// contains every typed word, case-insensitively). Keys: ↑/k ↓/j PgUp PgDn Home End; the wheel
// scrolls; a click selects.

public struct ListView: Sendable {
    public var items: [String] { didSet { clampSelection() } }
    public private(set) var filter = ""
    public var isFiltering = false
    /// Index into `visible` of the selected row.
    public private(set) var cursor = 0
    private var top = 0
    private var lastRect = Rect(x: 0, y: 0, width: 0, height: 0)

    public init(items: [String] = []) { self.items = items }

    /// Indices (into `items`) that pass the filter, in order.
    public var visible: [Int] {
        let words = filter.lowercased().split(separator: " ")
        if words.isEmpty { return Array(items.indices) }
        return items.indices.filter { i in let t = items[i].lowercased(); return words.allSatisfy { t.contains($0) } }
    }

    /// The selected item's index in `items` (nil: the list, or the filtered list, is empty).
    public var selection: Int? { let v = visible; return v.isEmpty ? nil : v[min(cursor, v.count - 1)] }

    public mutating func select(item index: Int) {
        if let pos = visible.firstIndex(of: index) { cursor = pos }
    }

    public mutating func setFilter(_ f: String) { filter = f; cursor = 0; top = 0 }

    private mutating func clampSelection() { cursor = min(cursor, max(0, visible.count - 1)) }

    /// Handles `key`; returns whether the list used it.
    public mutating func handle(_ key: Key) -> Bool {
        let count = visible.count
        if isFiltering {
            switch key {
            case .escape: isFiltering = false; setFilter(""); return true
            case .enter: isFiltering = false; return true
            case .backspace: if !filter.isEmpty { setFilter(String(filter.dropLast())) }; return true
            case .char(let c): setFilter(filter + String(c)); return true
            default: break
            }
        }
        let page = max(1, lastRect.height - 1)
        switch key {
        case .up, .char("k"): cursor = max(0, cursor - 1)
        case .down, .char("j"): cursor = min(max(0, count - 1), cursor + 1)
        case .pageUp: cursor = max(0, cursor - page)
        case .pageDown: cursor = min(max(0, count - 1), cursor + page)
        case .home, .char("g"): cursor = 0
        case .end, .char("G"): cursor = max(0, count - 1)
        case .char("/"): isFiltering = true
        case .mouse(let m) where lastRect.contains(x: m.x, y: m.y):
            switch m.kind {
            case .wheelUp: cursor = max(0, cursor - 3)
            case .wheelDown: cursor = min(max(0, count - 1), cursor + 3)
            case .click, .press:
                let row = top + (m.y - lastRect.y) - (isFiltering || !filter.isEmpty ? 1 : 0)
                if row >= 0 && row < count { cursor = row }
            case .release: break
            }
        default: return false
        }
        return true
    }

    public mutating func draw(_ canvas: Canvas, in rect: Rect, focused: Bool, empty: String = "(empty)") {
        lastRect = rect
        guard !rect.isEmpty else { return }
        var area = rect
        if isFiltering || !filter.isEmpty {
            canvas.text(TextWidth.pad("/" + filter + (isFiltering ? "▏" : ""), to: rect.width), x: rect.x, y: rect.y, role: .accent, maxWidth: rect.width)
            area = rect.splitRows(1).1
        }
        let v = visible
        if v.isEmpty { canvas.text(empty, x: area.x, y: area.y, role: .dim, maxWidth: area.width); return }
        if cursor < top { top = cursor }
        if cursor >= top + area.height { top = cursor - area.height + 1 }
        top = max(0, min(top, max(0, v.count - area.height)))
        for row in 0..<min(area.height, v.count - top) {
            let i = v[top + row], selected = top + row == cursor
            let role: Role = selected ? (focused ? .selection : .accent) : .text
            canvas.text(TextWidth.pad((selected ? "▸ " : "  ") + items[i], to: area.width), x: area.x, y: area.y + row, role: role, maxWidth: area.width)
        }
        if v.count > area.height {   // scroll position on the right edge
            let pos = area.y + (area.height - 1) * cursor / max(1, v.count - 1)
            canvas.text("▐", x: area.maxX - 1, y: pos, role: .dim)
        }
    }
}
