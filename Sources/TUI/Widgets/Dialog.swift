// A modal dialog: a title, a message, text fields and buttons, drawn over the screen. Tab
// moves between fields and buttons, Enter on a button (or a click) chooses it, Esc cancels.

public struct Dialog: Sendable {
    public enum Outcome: Equatable, Sendable { case none, chose(String), cancelled }

    public var title: String
    public var message: [String]
    public var fields: [TextField]
    public var buttons: [Button]
    public private(set) var focus = 0    // fields first, then buttons
    public var error: String?

    public init(title: String, message: [String] = [], fields: [TextField] = [], buttons: [String] = ["OK", "Cancel"]) {
        self.title = title; self.message = message; self.fields = fields; self.buttons = buttons.map(Button.init)
    }

    public func value(_ label: String) -> String { fields.first { $0.label == label }?.text ?? "" }

    public mutating func handle(_ key: Key) -> Outcome {
        let n = fields.count + buttons.count
        for b in buttons where b.isClicked(by: key) { return .chose(b.title) }
        switch key {
        case .escape: return .cancelled
        case .tab, .down where focus < fields.count: focus = (focus + 1) % n; return .none
        case .backTab, .up where focus < fields.count: focus = (focus + n - 1) % n; return .none
        case .enter:
            if focus < fields.count { focus += 1; return .none }
            return .chose(buttons[focus - fields.count].title)
        case .left where focus >= fields.count: focus = max(fields.count, focus - 1); return .none
        case .right where focus >= fields.count: focus = min(n - 1, focus + 1); return .none
        default:
            if focus < fields.count { _ = fields[focus].handle(key); error = nil }
            else if case .char(let c) = key, let i = buttons.firstIndex(where: { $0.title.lowercased().first == Character(c.lowercased()) }) {
                return .chose(buttons[i].title)
            }
            return .none
        }
    }

    public mutating func draw(_ canvas: Canvas) {
        let w = min(canvas.width - 2, max(50, (message.map(TextWidth.of).max() ?? 0) + 4))
        let h = min(canvas.height - 2, message.count + fields.count + (error == nil ? 0 : 1) + 5)
        let r = canvas.bounds.centered(width: w, height: h)
        canvas.fill(r, role: .text)
        let inner = canvas.box(r, title: title, focused: true).inset(1, 0)
        var y = inner.y
        for line in message { canvas.text(line, x: inner.x, y: y, role: .text, maxWidth: inner.width); y += 1 }
        if !message.isEmpty { y += 1 }
        for i in fields.indices {
            fields[i].draw(canvas, in: Rect(x: inner.x, y: y, width: inner.width, height: 1), focused: focus == i, editing: focus == i, labelWidth: 11)
            y += 1
        }
        if let error { canvas.text(error, x: inner.x, y: y, role: .error, maxWidth: inner.width); y += 1 }
        var bx = inner.x
        for i in buttons.indices {
            buttons[i].draw(canvas, x: bx, y: inner.maxY - 1, focused: focus == fields.count + i)
            bx += buttons[i].width + 2
        }
    }
}
