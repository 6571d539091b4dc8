// A line plot in braille cells (each cell is 2×4 dots, U+2800 + dot bits): several named
// series in their own colours, auto-ranged y with a log-y toggle (for losses that fall over
// decades), y labels on the left, and each series' last value in the legend.

import Foundation

public struct PlotSeries: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public var role: Role
    public init(name: String, points: [(x: Double, y: Double)], role: Role) { self.name = name; self.points = points; self.role = role }
}

public struct BraillePlot: Sendable {
    public var series: [PlotSeries] = []
    public var logY = false
    public init() {}

    /// The y range over every finite (and, in log mode, positive) value; nil when none.
    public func yRange() -> (Double, Double)? {
        var lo = Double.infinity, hi = -Double.infinity
        for s in series { for p in s.points where p.y.isFinite && (!logY || p.y > 0) { lo = min(lo, p.y); hi = max(hi, p.y) } }
        guard lo.isFinite else { return nil }
        if logY { lo = log10(lo); hi = log10(hi) }
        if hi - lo < 1e-12 { lo -= 0.5; hi += 0.5 }
        return (lo, hi)
    }

    static func label(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1000 || a < 0.01 { return String(format: "%.1e", v) }
        return String(format: a >= 10 ? "%.1f" : "%.3f", v)
    }

    public func draw(_ canvas: Canvas, in rect: Rect) {
        guard rect.width >= 20, rect.height >= 4 else { return }
        // Legend: name and last value of every series.
        var lx = rect.x
        for s in series {
            let last = s.points.last.map { BraillePlot.label($0.y) } ?? "–"
            let item = "■ \(s.name) \(last)  "
            if lx + TextWidth.of(item) > rect.maxX { break }
            canvas.text("■", x: lx, y: rect.y, role: s.role)
            canvas.text(String(item.dropFirst(2)), x: lx + 2, y: rect.y, role: .text)
            lx += TextWidth.of(item)
        }
        if logY { canvas.text("log", x: rect.maxX - 3, y: rect.y, role: .dim) }
        let area = Rect(x: rect.x + 9, y: rect.y + 1, width: rect.width - 9, height: rect.height - 2)
        guard let (lo, hi) = yRange(), !area.isEmpty else {
            canvas.text("no data yet", x: area.x, y: area.y + area.height / 2, role: .dim); return
        }
        let xs = series.flatMap { $0.points.map(\.x) }
        let xlo = xs.min() ?? 0, xhi = max(xs.max() ?? 1, (xs.min() ?? 0) + 1e-9)
        func yText(_ v: Double) -> String { BraillePlot.label(logY ? pow(10, v) : v) }
        canvas.text(TextWidth.pad(yText(hi), to: 8), x: rect.x, y: area.y, role: .dim)
        canvas.text(TextWidth.pad(yText((lo + hi) / 2), to: 8), x: rect.x, y: area.y + area.height / 2, role: .dim)
        canvas.text(TextWidth.pad(yText(lo), to: 8), x: rect.x, y: area.maxY - 1, role: .dim)
        for yy in area.y..<area.maxY { canvas.text("┤", x: area.x - 1, y: yy, role: .border) }
        let xl = BraillePlot.label(xlo), xh = BraillePlot.label(xhi)
        canvas.text(xl, x: area.x, y: area.maxY, role: .dim)
        canvas.text(xh, x: area.maxX - TextWidth.of(xh), y: area.maxY, role: .dim)

        let dw = area.width * 2, dh = area.height * 4
        var bits = [UInt8](repeating: 0, count: area.width * area.height)
        var owner = [Int](repeating: -1, count: area.width * area.height)
        let dotBit: [[UInt8]] = [[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]]
        func plot(_ px: Int, _ py: Int, _ s: Int) {
            guard px >= 0, px < dw, py >= 0, py < dh else { return }
            let c = (py / 4) * area.width + px / 2
            bits[c] |= dotBit[px % 2][py % 4]; owner[c] = s
        }
        for (si, s) in series.enumerated() {
            var prev: (Int, Int)?
            for p in s.points {
                guard p.y.isFinite, !logY || p.y > 0 else { prev = nil; continue }
                let yv = logY ? log10(p.y) : p.y
                let px = Int(((p.x - xlo) / (xhi - xlo) * Double(dw - 1)).rounded())
                let py = Int(((hi - yv) / (hi - lo) * Double(dh - 1)).rounded())
                if let (x0, y0) = prev {   // Bresenham from the previous point
                    var x = x0, y = y0
                    let dx = abs(px - x0), dy = -abs(py - y0), sx = x0 < px ? 1 : -1, sy = y0 < py ? 1 : -1
                    var err = dx + dy
                    while true {
                        plot(x, y, si)
                        if x == px && y == py { break }
                        let e2 = 2 * err
                        if e2 >= dy { err += dy; x += sx }
                        if e2 <= dx { err += dx; y += sy }
                    }
                } else { plot(px, py, si) }
                prev = (px, py)
            }
        }
        for cy in 0..<area.height {
            for cx in 0..<area.width where bits[cy * area.width + cx] != 0 {
                let ch = String(UnicodeScalar(0x2800 + UInt32(bits[cy * area.width + cx]))!)
                canvas.text(ch, x: area.x + cx, y: area.y + cy, role: series[owner[cy * area.width + cx]].role)
            }
        }
    }
}
