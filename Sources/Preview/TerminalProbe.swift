// Asks the terminal on a tty what it can show. The tty goes to raw mode for the exchange
// (restored whatever happens); each read waits at most `timeout`, so terminals that never
// answer (tmux without sixel passthrough, serial consoles, pipes) cost that and nothing more.

import Foundation

public enum TerminalProbe {
    /// Replies of the controlling terminal (nil when the process has none).
    public static func query(timeout: Double = 0.25) -> TerminalReplies? {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var r = TerminalReplies(parsing: rawReplies(fd: fd, timeout: timeout))
        if r.cellSize == nil, let cs = windowCellSize(fd: fd) { r.cellSize = cs }
        return r
    }

    /// The bytes the terminal on `fd` sent back to the queries (empty on silence).
    public static func rawReplies(fd: Int32, timeout: Double = 0.25) -> [UInt8] {
        guard isatty(fd) != 0 else { return [] }
        let io = fd
        var saved = termios()
        guard tcgetattr(io, &saved) == 0 else { return [] }
        var raw = saved
        cfmakeraw(&raw)
        guard tcsetattr(io, TCSANOW, &raw) == 0 else { return [] }
        var got: [UInt8] = []
        // Replies that come after the deadline must not be echoed into the shell: give
        // stragglers a moment, then discard unread input before the tty leaves raw mode.
        defer {
            if !TerminalReplies.isComplete(got) { usleep(50_000) }
            tcflush(io, TCIFLUSH)
            tcsetattr(io, TCSANOW, &saved)
        }
        _ = TerminalReplies.queries.withUnsafeBufferPointer { write(io, $0.baseAddress, $0.count) }
        var buf = [UInt8](repeating: 0, count: 256)
        let deadline = Date().addingTimeInterval(timeout)
        while !TerminalReplies.isComplete(got) {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { break }
            var p = pollfd(fd: io, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(left * 1000)) > 0 else { break }
            let n = read(io, &buf, buf.count)
            if n <= 0 { break }
            got += buf[0..<n]
        }
        return got
    }

    /// Cell size from TIOCGWINSZ's pixel fields, when the terminal fills them in.
    public static func windowCellSize(fd: Int32 = STDOUT_FILENO) -> (width: Int, height: Int)? {
        var ws = winsize()
        guard ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0, ws.ws_xpixel > 0, ws.ws_ypixel > 0 else { return nil }
        return (Int(ws.ws_xpixel) / Int(ws.ws_col), Int(ws.ws_ypixel) / Int(ws.ws_row))
    }

    /// Terminal size in cells: stdout's terminal, else the controlling one, else 80×24.
    public static func size(fd: Int32 = STDOUT_FILENO) -> (columns: Int, rows: Int) {
        var ws = winsize()
        if ioctl(fd, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 { return (Int(ws.ws_col), Int(ws.ws_row)) }
        let tty = open("/dev/tty", O_RDONLY | O_NOCTTY)
        if tty >= 0 {
            defer { close(tty) }
            if ioctl(tty, UInt(TIOCGWINSZ), &ws) == 0, ws.ws_col > 0, ws.ws_row > 0 { return (Int(ws.ws_col), Int(ws.ws_row)) }
        }
        return (80, 24)
    }
}
