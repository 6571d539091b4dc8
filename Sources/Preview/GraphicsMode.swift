// How images reach this terminal, and why: the decision `troupe show` and `troupe doctor`
// share. Order: TROUPE_GRAPHICS override; NO_COLOR or TERM=dumb → ASCII; not a terminal →
// ASCII; sixel when DA1 says so; else half blocks in 24-bit colour (COLORTERM truecolor/24bit)
// or the 256-colour palette.

public enum GraphicsMode: String, Sendable, CaseIterable {
    case sixel, blocks, blocks256 = "blocks-256", ascii
}

public struct GraphicsDecision: Sendable {
    public let mode: GraphicsMode
    public let reason: String
    public let colorRegisters: Int
    public let cellSize: (width: Int, height: Int)
    /// Largest sixel image the terminal draws (XTSMGRAPHICS), when it said.
    public let maxSixelSize: (width: Int, height: Int)?

    /// Cell size when the terminal does not say (a common 10×20 px cell).
    public static let defaultCell = (width: 10, height: 20)

    /// Whether asking the terminal can change the decision: not when a mode is forced, colour is
    /// off (NO_COLOR, TERM=dumb) or the output is no terminal — then nothing is written to it.
    public static func needsProbe(environment env: [String: String], isTerminal: Bool) -> Bool {
        guard isTerminal else { return false }
        if let forced = env["TROUPE_GRAPHICS"], GraphicsMode(rawValue: forced) != nil { return false }
        if env["NO_COLOR"].map({ !$0.isEmpty }) ?? false { return false }
        return env["TERM"] != "dumb"
    }

    public static func decide(environment env: [String: String], isTerminal: Bool, replies: TerminalReplies?) -> GraphicsDecision {
        let cell = replies?.cellSize ?? defaultCell
        let registers = replies?.colorRegisters ?? 256
        func d(_ m: GraphicsMode, _ why: String) -> GraphicsDecision {
            GraphicsDecision(mode: m, reason: why, colorRegisters: registers, cellSize: cell, maxSixelSize: replies?.maxSixelSize)
        }
        if let forced = env["TROUPE_GRAPHICS"], !forced.isEmpty {
            if let m = GraphicsMode(rawValue: forced) { return d(m, "TROUPE_GRAPHICS=\(forced)") }
        }
        if env["NO_COLOR"].map({ !$0.isEmpty }) ?? false { return d(.ascii, "NO_COLOR is set") }
        if env["TERM"] == "dumb" { return d(.ascii, "TERM=dumb") }
        if !isTerminal { return d(.ascii, "output is not a terminal") }
        let truecolor = ["truecolor", "24bit"].contains(env["COLORTERM"]?.lowercased() ?? "")
        let blocks: GraphicsMode = truecolor ? .blocks : .blocks256
        guard let replies else { return d(blocks, "no terminal to ask") }
        guard let da = replies.deviceAttributes else {
            return d(blocks, "the terminal did not answer the device-attributes query (timed out)")
        }
        if replies.hasSixel { return d(.sixel, "the terminal reports sixel graphics (DA1 attribute 4)") }
        return d(blocks, "no sixel in the terminal's device attributes (\(da.map(String.init).joined(separator: ";")))")
    }
}
