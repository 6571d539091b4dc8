// Owns the ncurses lifetime: starts curses on a terminal and guarantees `endwin()` runs,
// so the user's terminal is restored however the studio leaves (return, throw, signal).

import CNcurses
import Foundation

public final class TerminalSession {
    public struct Unavailable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "cannot start the terminal UI: \(reason)" }
    }

    private let screen: OpaquePointer
    private var ended = false
    nonisolated(unsafe) private static var active: TerminalSession?

    /// Starts curses on the given file descriptors (stdin/stdout by default).
    public init(term: String? = nil, inputFD: Int32 = 0, outputFD: Int32 = 1) throws {
        setlocale(LC_ALL, "")
        guard let out = fdopen(dup(outputFD), "w"), let inp = fdopen(dup(inputFD), "r") else {
            throw Unavailable(reason: "cannot open the terminal streams")
        }
        let type = term ?? ProcessInfo.processInfo.environment["TERM"] ?? "dumb"
        guard let s = newterm(type, out, inp) else {
            throw Unavailable(reason: "terminal type '\(type)' is unknown to terminfo")
        }
        screen = s
        set_term(s)
        cbreak(); noecho()
        keypad(stdscr, true)
        TerminalSession.active = self
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { code in
                TerminalSession.active?.end()
                signal(code, SIG_DFL)
                raise(code)
            }
        }
    }

    /// Screen size in cells.
    public var size: (rows: Int, columns: Int) { (Int(getmaxy(stdscr)), Int(getmaxx(stdscr))) }

    /// Restores the terminal; safe to call more than once.
    public func end() {
        if ended { return }
        ended = true
        endwin()
    }

    deinit {
        end()
        delscreen(screen)
        if TerminalSession.active === self { TerminalSession.active = nil }
    }
}
