// A screen's key map: every binding names its keys, a short hint for the status bar and a line
// for the `?` help, so no key is hidden behind a manual (btop/lazygit style). Arrow keys and
// vim keys are listed together where both work.

public struct KeyBinding<Action>: @unchecked Sendable {
    public let keys: [Key]
    public let hint: String           // status bar ("new")
    public let help: String           // `?` list ("create a character from a prompt")
    /// nil: a line of the `?` list for keys a widget handles (arrows in a list), no action.
    public let action: Action?
    public let inStatusBar: Bool

    public init(_ keys: [Key], _ hint: String, help: String? = nil, statusBar: Bool = true, _ action: Action) {
        self.keys = keys; self.hint = hint; self.help = help ?? hint; self.action = action; self.inStatusBar = statusBar
    }

    /// A help-only line: keys a widget handles itself, listed so `?` shows every key.
    public init(help keys: [Key], _ help: String) {
        self.keys = keys; self.hint = ""; self.help = help; self.action = nil; self.inStatusBar = false
    }

    public var keyLabel: String { keys.map(\.label).joined(separator: "/") }
}

public struct KeyMap<Action> {
    public var bindings: [KeyBinding<Action>]
    public init(_ bindings: [KeyBinding<Action>]) { self.bindings = bindings }

    public func action(for key: Key) -> Action? { bindings.first { $0.keys.contains(key) && $0.action != nil }?.action }

    /// (keys, hint) pairs for the status bar.
    public var hints: [(String, String)] { bindings.filter(\.inStatusBar).map { ($0.keys.first?.label ?? "", $0.hint) } }

    /// (keys, help) lines for the help overlay.
    public var helpLines: [(String, String)] { bindings.map { ($0.keyLabel, $0.help) } }
}
