// Display width of text in terminal cells (CJK and emoji take two, combining marks none), so
// labels, prompts and names clip at the right column instead of spilling into the next pane.

import CNcurses

public enum TextWidth {
    /// Cells one scalar takes (wcwidth; unprintable scalars count as one: they are drawn as '?').
    public static func of(_ s: Unicode.Scalar) -> Int {
        let w = troupe_wcwidth(s.value)
        return w < 0 ? 1 : Int(w)
    }

    public static func of(_ text: String) -> Int { text.unicodeScalars.reduce(0) { $0 + of($1) } }

    /// The longest prefix of `text` that fits in `columns` cells; with `ellipsis`, a cut
    /// string ends in "…" so the reader knows there is more.
    public static func clip(_ text: String, to columns: Int, ellipsis: Bool = false) -> String {
        guard columns > 0 else { return "" }
        if of(text) <= columns { return text }
        let limit = ellipsis ? columns - 1 : columns
        var out = String.UnicodeScalarView(), used = 0
        for s in text.unicodeScalars {
            let w = of(s)
            if used + w > limit { break }
            out.append(s); used += w
        }
        return String(out) + (ellipsis ? "…" : "")
    }

    /// `text` clipped and padded with spaces to exactly `columns` cells.
    public static func pad(_ text: String, to columns: Int) -> String {
        let c = clip(text, to: columns)
        return c + String(repeating: " ", count: max(0, columns - of(c)))
    }
}
