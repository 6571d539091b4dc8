// A labelled numeric slider: ←/h and →/l move by `step`, with shift (H/L) or PgUp/PgDn by
// `coarse`, Home/End jump to the ends; a click on the track sets the value where it lands.
// Values are snapped to `step` so a preview never re-renders for a change the label hides.

public struct Slider: Sendable {
    public var label: String
    public var range: ClosedRange<Double>
    public var step: Double
    public var coarse: Double
    public var decimals: Int
    public private(set) var value: Double
    private var trackRect = Rect(x: 0, y: 0, width: 0, height: 0)

    public init(_ label: String, value: Double, range: ClosedRange<Double>, step: Double, coarse: Double? = nil, decimals: Int = 2) {
        self.label = label; self.range = range; self.step = step; self.coarse = coarse ?? step * 10; self.decimals = decimals
        self.value = range.lowerBound
        set(value)
    }

    public mutating func set(_ v: Double) {
        let clamped = min(max(v, range.lowerBound), range.upperBound)
        let snapped = range.lowerBound + ((clamped - range.lowerBound) / step).rounded() * step
        value = min(max(snapped, range.lowerBound), range.upperBound)
    }

    public var text: String {
        decimals == 0 ? String(Int(value.rounded())) : String(format: "%.\(decimals)f", value)
    }

    /// Handles `key`; returns whether the value changed.
    public mutating func handle(_ key: Key) -> Bool {
        let old = value
        switch key {
        case .left, .char("h"): set(value - step)
        case .right, .char("l"): set(value + step)
        case .char("H"), .pageDown: set(value - coarse)
        case .char("L"), .pageUp: set(value + coarse)
        case .home: set(range.lowerBound)
        case .end: set(range.upperBound)
        case .mouse(let m) where trackRect.contains(x: m.x, y: m.y) && (m.kind == .click || m.kind == .press):
            let f = Double(m.x - trackRect.x) / Double(max(1, trackRect.width - 1))
            set(range.lowerBound + f * (range.upperBound - range.lowerBound))
        case .mouse(let m) where trackRect.inset(-20, 0).contains(x: m.x, y: m.y):
            if m.kind == .wheelUp { set(value + step) } else if m.kind == .wheelDown { set(value - step) }
        default: return false
        }
        return value != old
    }

    /// One row: "label  [━━━━━●────]  value".
    public mutating func draw(_ canvas: Canvas, in rect: Rect, focused: Bool, labelWidth: Int = 12) {
        guard rect.height >= 1, rect.width > labelWidth + 8 else { return }
        let valueText = text
        let trackWidth = rect.width - labelWidth - valueText.count - 3
        canvas.text(TextWidth.pad(label, to: labelWidth), x: rect.x, y: rect.y, role: focused ? .focus : .text)
        trackRect = Rect(x: rect.x + labelWidth, y: rect.y, width: max(1, trackWidth), height: 1)
        let f = (value - range.lowerBound) / max(1e-12, range.upperBound - range.lowerBound)
        let knob = Int((f * Double(max(0, trackWidth - 1))).rounded())
        let filled = String(repeating: "━", count: knob), rest = String(repeating: "─", count: max(0, trackWidth - knob - 1))
        canvas.text(filled, x: trackRect.x, y: rect.y, role: focused ? .accent : .dim)
        canvas.text("●", x: trackRect.x + knob, y: rect.y, role: focused ? .focus : .text)
        canvas.text(rest, x: trackRect.x + knob + 1, y: rect.y, role: .dim)
        canvas.text(valueText, x: rect.maxX - valueText.count, y: rect.y, role: focused ? .focus : .text)
    }
}
