import Foundation
import XCTest
@testable import TUI

final class TerminalSessionTests: XCTestCase {
    /// Curses starts on a pseudo-terminal, reports its size, and restores it on end().
    func testStartsOnPTYAndRestores() throws {
        var master: Int32 = -1, slave: Int32 = -1
        var ws = winsize(ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0)
        XCTAssertEqual(openpty(&master, &slave, nil, nil, &ws), 0)
        defer { close(master); close(slave) }
        let session = try TerminalSession(term: "xterm-256color", inputFD: slave, outputFD: slave)
        XCTAssertEqual(session.size.rows, 24)
        XCTAssertEqual(session.size.columns, 80)
        session.end()
        session.end()  // idempotent
    }

    func testUnknownTerminalTypeIsAClearError() {
        var master: Int32 = -1, slave: Int32 = -1
        XCTAssertEqual(openpty(&master, &slave, nil, nil, nil), 0)
        defer { close(master); close(slave) }
        XCTAssertThrowsError(try TerminalSession(term: "no-such-terminal-xyz", inputFD: slave, outputFD: slave)) { e in
            XCTAssertTrue("\(e)".contains("no-such-terminal-xyz"))
        }
    }
}

final class TerminalSessionDrawingTests: XCTestCase {
    /// A frame drawn through curses reaches the terminal, and keys written to it come back as Keys.
    func testDrawsAndReadsKeysOnPTY() throws {
        var master: Int32 = -1, slave: Int32 = -1
        var ws = winsize(ws_row: 10, ws_col: 40, ws_xpixel: 0, ws_ypixel: 0)
        XCTAssertEqual(openpty(&master, &slave, nil, nil, &ws), 0)
        defer { close(master); close(slave) }
        let t = try TerminalSession(term: "xterm-256color", inputFD: slave, outputFD: slave, mouse: false)
        XCTAssertEqual(t.colorDepth, .indexed256)
        t.beginFrame()
        t.text("hello studio", x: 2, y: 3, role: .title, maxWidth: nil)
        t.imageCell(x: 0, y: 0, top: Pixel(255, 0, 0), bottom: Pixel(0, 0, 255))
        t.present()
        var buf = [UInt8](repeating: 0, count: 8192)
        usleep(100_000)
        let n = read(master, &buf, buf.count)
        XCTAssertGreaterThan(n, 0)
        let out = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        XCTAssertTrue(out.contains("hello studio"))
        XCTAssertTrue(out.contains("▀"))
        _ = "j\u{1B}OA".withCString { write(master, $0, 4) }   // keypad mode: xterm sends ESC O A
        XCTAssertEqual(t.readKey(timeoutMs: 500), .char("j"))
        XCTAssertEqual(t.readKey(timeoutMs: 500), .up)
        XCTAssertNil(t.readKey(timeoutMs: 10))
        t.end()
        let mono = try TerminalSession(term: "vt100", inputFD: slave, outputFD: slave, noColor: true, mouse: false)
        XCTAssertEqual(mono.colorDepth, ColorDepth.none)
        mono.end()
    }
}
