// Parsing what terminals answer to capability queries. Pure functions over the bytes read
// back, so recorded answers of real terminals are the tests.
//   DA1          CSI c          → CSI ? 6x ; a ; b … c      attribute 4 = sixel graphics
//   XTSMGRAPHICS CSI ? 1;1;0 S  → CSI ? 1 ; 0 ; N S         colour registers
//                CSI ? 2;1;0 S  → CSI ? 2 ; 0 ; W ; H S     maximum sixel geometry
//   XTWINOPS     CSI 16 t       → CSI 6 ; h ; w t           cell size in pixels

public struct TerminalReplies: Equatable, Sendable {
    public var deviceAttributes: [Int]? = nil
    public var colorRegisters: Int? = nil
    public var maxSixelSize: (width: Int, height: Int)? = nil
    public var cellSize: (width: Int, height: Int)? = nil

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.deviceAttributes == b.deviceAttributes && a.colorRegisters == b.colorRegisters
            && a.maxSixelSize?.width == b.maxSixelSize?.width && a.maxSixelSize?.height == b.maxSixelSize?.height
            && a.cellSize?.width == b.cellSize?.width && a.cellSize?.height == b.cellSize?.height
    }

    public var hasSixel: Bool { deviceAttributes?.contains(4) ?? false }

    /// Parses every complete CSI reply in `bytes` (interleaved, in any order, with noise).
    public init(parsing bytes: [UInt8]) {
        self.init()
        var i = 0
        while i < bytes.count {
            // CSI is ESC [ (or the 8-bit 0x9B)
            var start = -1
            if bytes[i] == 0x1B, i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "[") { start = i + 2 }
            else if bytes[i] == 0x9B { start = i + 1 }
            guard start >= 0 else { i += 1; continue }
            var j = start
            while j < bytes.count, !(0x40...0x7E).contains(bytes[j]) { j += 1 }
            guard j < bytes.count else { break }
            let body = String(decoding: bytes[start..<j], as: UTF8.self)
            apply(final: Character(Unicode.Scalar(bytes[j])), body: body)
            i = j + 1
        }
    }

    private mutating func apply(final: Character, body: String) {
        let priv = body.hasPrefix("?")
        let nums = (priv ? String(body.dropFirst()) : body).split(separator: ";", omittingEmptySubsequences: false).map { Int($0) }
        guard nums.allSatisfy({ $0 != nil }) else { return }
        let n = nums.map { $0! }
        switch final {
        case "c" where priv: deviceAttributes = Array(n.dropFirst())
        case "S" where priv && n.count >= 3 && n[1] == 0:
            if n[0] == 1 { colorRegisters = n[2] }
            if n[0] == 2 && n.count >= 4 { maxSixelSize = (n[2], n[3]) }
        case "t" where !priv && n.count >= 3 && n[0] == 6 && n[1] > 0 && n[2] > 0:
            cellSize = (n[2], n[1])
        default: break
        }
    }

    /// The queries, DA1 last: every terminal answers DA1, so its reply ends the wait.
    public static let queries: [UInt8] = Array("\u{1B}[?1;1;0S\u{1B}[?2;1;0S\u{1B}[16t\u{1B}[c".utf8)

    /// True once the DA1 reply (the last one asked for) has arrived.
    public static func isComplete(_ bytes: [UInt8]) -> Bool {
        TerminalReplies(parsing: bytes).deviceAttributes != nil
    }
}
