// Shows images on this process's stdout in the way GraphicsDecision picked, sized to the
// terminal: small images (the 64×64 sprites of troupe-mini) are enlarged by whole factors so
// a person can see them; large ones shrink to fit.

import Foundation
import CSixel
import Preview

struct TerminalOutput {
    let decision: GraphicsDecision
    let columns: Int, rows: Int

    static func detect(graphics: String?) -> TerminalOutput {
        var env = ProcessInfo.processInfo.environment
        if let graphics { env["TROUPE_GRAPHICS"] = graphics }
        let tty = isatty(STDOUT_FILENO) != 0
        let replies = GraphicsDecision.needsProbe(environment: env, isTerminal: tty) ? TerminalProbe.query() : nil
        let (c, r) = TerminalProbe.size()
        return TerminalOutput(decision: GraphicsDecision.decide(environment: env, isTerminal: tty, replies: replies), columns: c, rows: r)
    }

    /// Whole-number enlargement for small images (up to ~256 px), 1 otherwise.
    static func enlargement(_ img: RGBImage) -> Int { max(1, 256 / max(img.width, img.height)) }

    /// The bytes that draw `img` here, `maxColumns` cells wide at most.
    func render(_ img: RGBImage, maxColumns: Int? = nil) throws -> [UInt8] {
        let cols = max(1, min(maxColumns ?? columns, columns))
        let k = TerminalOutput.enlargement(img)
        switch decision.mode {
        case .sixel:
            let cw = decision.cellSize.width, ch = decision.cellSize.height
            let maxW = min(img.width * k, cols * cw, decision.maxSixelSize?.width ?? Int.max)
            let maxH = min(img.height * k, max(1, rows - 2) * ch, decision.maxSixelSize?.height ?? Int.max)
            let (w, h) = Sixel.fit(width: img.width, height: img.height, maxWidth: maxW, maxHeight: maxH)
            // Nearest-neighbour style enlargement keeps pixel art crisp; Lanczos for shrinking.
            let scaled = try Sixel.scaled(img, width: w, height: h, filter: w > img.width ? SIXEL_RES_NEAREST : SIXEL_RES_LANCZOS3)
            return try Sixel.encode(scaled, colors: decision.colorRegisters, diffuse: w <= img.width) + Array("\n".utf8)
        case .blocks, .blocks256:
            let (w, h) = Sixel.fit(width: img.width, height: img.height, maxWidth: min(img.width * k / 4 * 2, cols), maxHeight: max(2, (rows - 2) * 2))
            let scaled = try Sixel.scaled(img, width: max(1, w), height: max(2, h), filter: SIXEL_RES_LANCZOS3)
            return Array(TextRenderer.blocks(scaled, trueColor: decision.mode == .blocks).utf8)
        case .ascii:
            let w = min(cols, max(16, img.width * k / 4))
            let h = max(1, w * img.height / img.width / 2)
            return Array(TextRenderer.ascii(try Sixel.scaled(img, width: w, height: h, filter: SIXEL_RES_LANCZOS3)).utf8)
        }
    }
}
