// A tiny RGB rasteriser for the World's sprites: filled rectangles, ellipses and thick
// lines, clipped to the canvas. Integer pixel geometry keeps sprites crisp at 64×64.

struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int, fill: RGB) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[i * 3] = fill.r; pixels[i * 3 + 1] = fill.g; pixels[i * 3 + 2] = fill.b }
    }

    mutating func set(_ x: Int, _ y: Int, _ c: RGB) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = (y * width + x) * 3
        pixels[i] = c.r; pixels[i + 1] = c.g; pixels[i + 2] = c.b
    }

    func get(_ x: Int, _ y: Int) -> RGB {
        let i = (y * width + x) * 3
        return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Rectangle [x0, x1) × [y0, y1), colour chosen per pixel (for patterns).
    mutating func rect(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ color: (Int, Int) -> RGB) {
        for y in max(0, y0)..<min(height, y1) where y1 > y0 { for x in max(0, x0)..<min(width, x1) where x1 > x0 { set(x, y, color(x, y)) } }
    }

    mutating func rect(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: RGB) { rect(x0, y0, x1, y1) { _, _ in c } }

    /// Filled ellipse centred at (cx, cy) with radii rx, ry (half-pixel centres).
    mutating func ellipse(_ cx: Double, _ cy: Double, _ rx: Double, _ ry: Double, _ c: RGB) {
        for y in Int(cy - ry - 1)...Int(cy + ry + 1) {
            for x in Int(cx - rx - 1)...Int(cx + rx + 1) {
                let dx = (Double(x) + 0.5 - cx) / rx, dy = (Double(y) + 0.5 - cy) / ry
                if dx * dx + dy * dy <= 1 { set(x, y, c) }
            }
        }
    }

    /// Line of thickness `t` from (x0, y0) to (x1, y1).
    mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ t: Double, _ c: RGB) {
        let steps = Int(max(abs(x1 - x0), abs(y1 - y0)) * 2) + 1
        for s in 0...steps {
            let f = Double(s) / Double(steps)
            ellipse(x0 + (x1 - x0) * f, y0 + (y1 - y0) * f, t / 2, t / 2, c)
        }
    }
}
