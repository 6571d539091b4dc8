// Keys and mouse events as the studio sees them, independent of curses' key codes.

public enum Key: Hashable, Sendable {
    case char(Character)
    case ctrl(Character)            // ctrl-a … ctrl-z (lowercase letter)
    case up, down, left, right, home, end, pageUp, pageDown
    case enter, escape, backspace, delete, tab, backTab
    case function(Int)
    case resize
    case mouse(MouseEvent)

    /// How a key reads in help and status bars.
    public var label: String {
        switch self {
        case .char(" "): return "space"
        case .char(let c): return String(c)
        case .ctrl(let c): return "^" + c.uppercased()
        case .up: return "↑"; case .down: return "↓"; case .left: return "←"; case .right: return "→"
        case .home: return "Home"; case .end: return "End"; case .pageUp: return "PgUp"; case .pageDown: return "PgDn"
        case .enter: return "Enter"; case .escape: return "Esc"; case .backspace: return "Bksp"; case .delete: return "Del"
        case .tab: return "Tab"; case .backTab: return "S-Tab"
        case .function(let n): return "F\(n)"
        case .resize: return "resize"
        case .mouse: return "mouse"
        }
    }
}

public struct MouseEvent: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case press, release, click, wheelUp, wheelDown }
    public var x: Int, y: Int, kind: Kind
    public init(x: Int, y: Int, kind: Kind) { self.x = x; self.y = y; self.kind = kind }
}
