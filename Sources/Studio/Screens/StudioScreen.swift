// One studio screen: it draws into a rectangle, handles keys, and says which keys it has
// (status bar hints and the `?` list). Screens keep their state in plain properties and draw
// into any Canvas, so tests drive them with keys and read a TextCanvas, no terminal needed.

import TUI

protocol StudioScreen: AnyObject {
    var id: ScreenID { get }
    /// Status-bar hints and `?` lines for the screen's own keys.
    var keyHelp: [(key: String, hint: String, help: String)] { get }
    /// True while a text field takes every key (global keys are off).
    var isEditing: Bool { get }
    /// Called when the screen comes to the front.
    func activate(_ ctx: StudioContext)
    /// Called every loop turn; returns whether the screen needs redrawing.
    func tick(_ ctx: StudioContext) -> Bool
    func handle(_ key: Key, _ ctx: StudioContext) -> Bool
    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext)
}

extension StudioScreen {
    var isEditing: Bool { false }
    func tick(_ ctx: StudioContext) -> Bool { false }
}

/// A screen's key table: binding → action, with hints from the same entries.
struct ScreenKeys<Action> {
    let map: KeyMap<Action>
    init(_ bindings: [KeyBinding<Action>]) { map = KeyMap(bindings) }
    var help: [(key: String, hint: String, help: String)] {
        map.bindings.map { (key: $0.inStatusBar ? ($0.keys.first?.label ?? "") : $0.keyLabel, hint: $0.inStatusBar ? $0.hint : "", help: "\($0.keyLabel)\t\($0.help)") }
    }
    func action(_ key: Key) -> Action? { map.action(for: key) }
}
