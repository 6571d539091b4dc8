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
