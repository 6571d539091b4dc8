// Capability detection over terminals' answers to the probe (DA1, XTSMGRAPHICS, CSI 16 t).
// The xterm lines were recorded here from Debian's xterm under Xvfb (`troupe doctor --raw`
// inside it; xterm keeps window ops off, so no CSI 16 t reply and the cell size comes from
// TIOCGWINSZ); the others are the replies those terminals' sources and documentation give.

import XCTest
@testable import Preview

final class TerminalDetectionTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    let recorded: [(name: String, reply: String, sixel: Bool, registers: Int?, cell: (Int, Int)?)] = [
        ("xterm -ti vt340", "\u{1B}[?1;0;1024S\u{1B}[?2;0;600;520S\u{1B}[?63;1;2;4;6;9;15;16;22;28c", true, 1024, nil),
        ("xterm (vt420 default)", "\u{1B}[?1;3S\u{1B}[?2;3S\u{1B}[?64;1;2;6;9;15;16;17;18;21;22;28c", false, nil, nil),
        ("mlterm", "\u{1B}[?1;0;256S\u{1B}[?2;0;1920;1080S\u{1B}[6;16;8t\u{1B}[?63;1;2;3;4;7;29c", true, 256, (8, 16)),
        ("foot", "\u{1B}[?1;0;1024S\u{1B}[?2;0;10000;10000S\u{1B}[6;20;10t\u{1B}[?62;4;22c", true, 1024, (10, 20)),
        ("WezTerm", "\u{1B}[?1;0;256S\u{1B}[?2;0;2048;2048S\u{1B}[6;18;9t\u{1B}[?65;4;6;18;22c", true, 256, (9, 18)),
        ("tmux (no passthrough)", "\u{1B}[?1;2c", false, nil, nil),
    ]

    func testRecordedAnswers() {
        for t in recorded {
            let r = TerminalReplies(parsing: bytes(t.reply))
            XCTAssertEqual(r.hasSixel, t.sixel, t.name)
            XCTAssertEqual(r.colorRegisters, t.registers, t.name)
            XCTAssertEqual(r.cellSize?.width, t.cell?.0, t.name); XCTAssertEqual(r.cellSize?.height, t.cell?.1, t.name)
            XCTAssertTrue(TerminalReplies.isComplete(bytes(t.reply)), t.name)
            let env = ["TERM": "xterm-256color", "COLORTERM": "truecolor"]
            let d = GraphicsDecision.decide(environment: env, isTerminal: true, replies: r)
            XCTAssertEqual(d.mode, t.sixel ? .sixel : .blocks, t.name)
        }
    }

    func testSilenceTimesOutToBlocks() {
        let r = TerminalReplies(parsing: [])
        XCTAssertFalse(TerminalReplies.isComplete([]))
        let d = GraphicsDecision.decide(environment: ["TERM": "screen"], isTerminal: true, replies: r)
        XCTAssertEqual(d.mode, .blocks256)
        XCTAssertTrue(d.reason.contains("did not answer"), d.reason)
        XCTAssertEqual(d.cellSize.width, GraphicsDecision.defaultCell.width)
    }

    func testPartialAndNoisyReplies() {
        // A reply split mid-sequence is incomplete; noise between replies is skipped.
        XCTAssertFalse(TerminalReplies.isComplete(bytes("\u{1B}[?63;1;4")))
        let r = TerminalReplies(parsing: bytes("junk\u{1B}[6;20;10tmore\u{1B}[?62;4c"))
        XCTAssertTrue(r.hasSixel); XCTAssertEqual(r.cellSize?.width, 10)
    }

    /// Where the answer cannot matter the terminal is not asked at all (no escape sequences
    /// written, no 250 ms spent).
    func testNoProbeWhereTheAnswerCannotMatter() {
        XCTAssertTrue(GraphicsDecision.needsProbe(environment: ["TERM": "xterm-256color"], isTerminal: true))
        XCTAssertFalse(GraphicsDecision.needsProbe(environment: ["TERM": "dumb"], isTerminal: true))
        XCTAssertFalse(GraphicsDecision.needsProbe(environment: ["TERM": "xterm", "NO_COLOR": "1"], isTerminal: true))
        XCTAssertFalse(GraphicsDecision.needsProbe(environment: ["TROUPE_GRAPHICS": "blocks"], isTerminal: true))
        XCTAssertFalse(GraphicsDecision.needsProbe(environment: ["TERM": "xterm"], isTerminal: false))
        XCTAssertTrue(GraphicsDecision.needsProbe(environment: ["TERM": "xterm", "NO_COLOR": ""], isTerminal: true), "an empty NO_COLOR does not count")
    }

    func testOverridesAndPlainTerminals() {
        let sixel = TerminalReplies(parsing: bytes("\u{1B}[?62;4c"))
        XCTAssertEqual(GraphicsDecision.decide(environment: ["TROUPE_GRAPHICS": "blocks"], isTerminal: true, replies: sixel).mode, .blocks)
        XCTAssertEqual(GraphicsDecision.decide(environment: ["TROUPE_GRAPHICS": "sixel"], isTerminal: false, replies: nil).mode, .sixel)
        XCTAssertEqual(GraphicsDecision.decide(environment: ["NO_COLOR": "1"], isTerminal: true, replies: sixel).mode, .ascii)
        XCTAssertEqual(GraphicsDecision.decide(environment: ["TERM": "dumb"], isTerminal: true, replies: sixel).mode, .ascii)
        XCTAssertEqual(GraphicsDecision.decide(environment: [:], isTerminal: false, replies: nil).mode, .ascii)
    }

    func testTextRenderers() {
        let img = RGBImage(width: 2, height: 2, pixels: [255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
        let blocks = TextRenderer.blocks(img, trueColor: true)
        XCTAssertTrue(blocks.contains("\u{1B}[38;2;255;0;0;48;2;0;0;255m▀"), blocks)
        XCTAssertEqual(blocks.filter { $0 == "\n" }.count, 1)
        XCTAssertEqual(TextRenderer.xterm256(255, 0, 0), 196)
        XCTAssertEqual(TextRenderer.xterm256(128, 128, 128), 244)
        XCTAssertEqual(TextRenderer.ascii(img), ":+\n.@\n")   // luminance 76, 149, 29, 255
    }
}

extension TerminalDetectionTests {
    func testMaximumSixelGeometryIsKept() {
        let r = TerminalReplies(parsing: Array("\u{1B}[?2;0;600;520S\u{1B}[?63;4c".utf8))
        let d = GraphicsDecision.decide(environment: [:], isTerminal: true, replies: r)
        XCTAssertEqual(d.maxSixelSize?.width, 600); XCTAssertEqual(d.maxSixelSize?.height, 520)
    }
}
