// The one owner of the terminal while the studio runs: starts ncursesw (UTF-8 locale, colours
// from the theme at the depth the terminal has, mouse), reads keys, draws a frame as a
// `Canvas`, writes raw graphics (sixel) after curses has refreshed, and guarantees `endwin()`
// runs however the studio leaves: return, throw, SIGINT/SIGTERM/SIGHUP (an SSH drop) or a
// crash signal. Termination signals only set a flag (the event loop checks it every tick and
// leaves cleanly); a second one, or a crash, restores the terminal at once and exits.

import CNcurses
import Foundation

public final class TerminalSession: Canvas {
    public struct Unavailable: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "cannot start the terminal UI: \(reason)" }
    }

    private let screen: OpaquePointer
    private let output: UnsafeMutablePointer<FILE>
    private var ended = false
    public let colorDepth: ColorDepth
    public private(set) var theme: Theme
    private var rolePairs: [Role: (attrs: attr_t, pair: Int32)] = [:]
    private var imagePairs: [Int: Int32] = [:]

    /// Weak: the session's owner decides its lifetime; a signal finds it while it lives.
    nonisolated(unsafe) private static weak var active: TerminalSession?
    /// The termination signal received (0: none); read by the event loop.
    nonisolated(unsafe) public private(set) static var pendingSignal: Int32 = 0

    /// Starts curses on the given descriptors (stdin/stdout by default). `noColor` forces
    /// monochrome (NO_COLOR); `mouse` enables clicks and the wheel.
    public init(term: String? = nil, inputFD: Int32 = 0, outputFD: Int32 = 1, theme: Theme = .builtInDefault,
                noColor: Bool = false, mouse: Bool = true) throws {
        setlocale(LC_ALL, "")
        if setlocale(LC_CTYPE, nil).map({ String(cString: $0) }).map({ !$0.uppercased().contains("UTF") }) ?? true {
            // Box drawing, braille plots and half blocks need UTF-8; C.UTF-8 exists everywhere glibc does.
            setlocale(LC_CTYPE, "C.UTF-8")
        }
        guard let out = fdopen(dup(outputFD), "w"), let inp = fdopen(dup(inputFD), "r") else {
            throw Unavailable(reason: "cannot open the terminal streams")
        }
        let type = term ?? ProcessInfo.processInfo.environment["TERM"] ?? "dumb"
        guard let s = newterm(type, out, inp) else {
            fclose(out); fclose(inp)
            throw Unavailable(reason: "terminal type '\(type)' is unknown to terminfo")
        }
        screen = s; output = out
        set_term(s)
        cbreak(); noecho(); nonl()
        keypad(stdscr, true)
        set_escdelay(25)
        curs_set(0)
        var depth = ColorDepth.none
        if !noColor && has_colors() {
            start_color(); use_default_colors()
            depth = ColorDepth(colors: Int(COLORS), noColor: false)
        }
        colorDepth = depth
        self.theme = theme
        if mouse { mousemask(troupe_mouse_mask(), nil); mouseinterval(0) }
        applyTheme(theme)
        TerminalSession.active = self
        TerminalSession.pendingSignal = 0
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { code in
                if TerminalSession.pendingSignal != 0 {   // asked twice: leave now
                    TerminalSession.active?.end(); _exit(128 + code)
                }
                TerminalSession.pendingSignal = code
            }
        }
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE] {
            signal(sig) { code in
                TerminalSession.active?.end()
                signal(code, SIG_DFL); raise(code)
            }
        }
    }

    /// Colour pairs and attributes for every role of `theme`.
    public func applyTheme(_ t: Theme) {
        theme = t
        rolePairs = [:]
        for role in Role.allCases {
            let st = t.style(role)
            var attrs: attr_t = 0
            if st.bold { attrs |= troupe_a_bold() }
            if st.reverse { attrs |= troupe_a_reverse() }
            if st.underline { attrs |= troupe_a_underline() }
            if st.dim { attrs |= troupe_a_dim() }
            var pair: Int32 = 0
            if colorDepth == .none {
                // Monochrome: what colour carried becomes an attribute, so a selection stays visible.
                if st.bg != .terminalDefault { attrs |= troupe_a_reverse() }
                if [.title, .accent, .focus, .statusKey, .error].contains(role) { attrs |= troupe_a_bold() }
                if [.dim, .border].contains(role) { attrs |= troupe_a_dim() }
                if role == .status { attrs |= troupe_a_reverse() }
            } else {
                let fg = colorDepth.number(st.fg), bg = colorDepth.number(st.bg)
                if fg != -1 || bg != -1 { pair = alloc_pair(Int32(fg), Int32(bg)); if pair < 0 { pair = 0 } }
            }
            rolePairs[role] = (attrs, pair)
        }
        imagePairs = [:]
    }

    public var width: Int { Int(getmaxx(stdscr)) }
    public var height: Int { Int(getmaxy(stdscr)) }
    public var size: (rows: Int, columns: Int) { (height, width) }

    private func use(_ role: Role) {
        let s = rolePairs[role] ?? (0, 0)
        _ = troupe_set_style(s.attrs, s.pair)
    }

    public func text(_ s: String, x: Int, y: Int, role: Role, maxWidth: Int?) {
        guard y >= 0, y < height, x < width else { return }
        var str = s, cx = x
        if cx < 0 {   // drop what lies left of the screen
            var skipped = 0, scalars = String.UnicodeScalarView()
            for u in s.unicodeScalars { if skipped < -cx { skipped += TextWidth.of(u) } else { scalars.append(u) } }
            str = String(scalars); cx = 0
        }
        // The last cell of the last row is left alone: writing it scrolls some terminals.
        let room = min(width - cx - (y == height - 1 ? 1 : 0), maxWidth ?? Int.max)
        str = TextWidth.clip(str.replacingOccurrences(of: "\t", with: " "), to: room)
        if str.isEmpty { return }
        use(role)
        mvaddstr(Int32(y), Int32(cx), str)
    }

    public func fill(_ r: Rect, role: Role) {
        let clipped = Rect(x: max(0, r.x), y: max(0, r.y), width: min(r.maxX, width) - max(0, r.x), height: min(r.maxY, height) - max(0, r.y))
        guard !clipped.isEmpty else { return }
        let row = String(repeating: " ", count: clipped.width)
        for yy in clipped.y..<clipped.maxY { text(row, x: clipped.x, y: yy, role: role, maxWidth: nil) }
    }

    static let shades = Array(" .:-=+*#%@")

    public func imageCell(x: Int, y: Int, top: Pixel, bottom: Pixel) {
        guard x >= 0, x < width, y >= 0, y < height, !(y == height - 1 && x == width - 1) else { return }
        if colorDepth == .none {
            let lum = (Int(top.r) + Int(top.g) + Int(top.b) + Int(bottom.r) + Int(bottom.g) + Int(bottom.b)) / 6
            let c = TerminalSession.shades[min(9, lum * 10 / 256)]
            _ = troupe_set_style(0, 0)
            mvaddstr(Int32(y), Int32(x), String(c))
            return
        }
        let fg = colorDepth.number(r: top.r, g: top.g, b: top.b), bg = colorDepth.number(r: bottom.r, g: bottom.g, b: bottom.b)
        let key = fg &* 16_777_259 &+ bg
        var pair = imagePairs[key]
        if pair == nil {
            let p = alloc_pair(Int32(fg), Int32(bg))   // ncurses recycles the least recently used pair when full
            pair = p < 0 ? 0 : p
            if imagePairs.count > 4096 { imagePairs.removeAll(keepingCapacity: true) }
            imagePairs[key] = pair
        }
        _ = troupe_set_style(0, pair!)
        mvaddstr(Int32(y), Int32(x), "▀")
    }

    /// Starts a frame: the next `present()` shows only what is drawn from now on.
    public func beginFrame() { _ = troupe_set_style(0, 0); werase(stdscr) }

    /// Shows the frame.
    public func present() { wnoutrefresh(stdscr); doupdate() }

    /// Makes the next `present()` repaint every cell (after raw graphics were overdrawn).
    public func invalidate() { clearok(curscr, true) }

    /// Writes `bytes` (a sixel image) with the cursor at cell (x, y), after curses' own output,
    /// and puts the cursor back where curses believes it is.
    public func writeRaw(_ bytes: [UInt8], x: Int, y: Int) {
        fflush(output)
        var seq = Array("\u{1B}7\u{1B}[\(y + 1);\(x + 1)H".utf8)
        seq += bytes
        seq += Array("\u{1B}8".utf8)
        _ = seq.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, output) }
        fflush(output)
    }

    /// The next key, waiting at most `timeoutMs` (nil: none came, or a signal is pending).
    public func readKey(timeoutMs: Int32) -> Key? {
        wtimeout(stdscr, timeoutMs)
        var ch: wint_t = 0
        let r = wget_wch(stdscr, &ch)
        if r == ERR { return nil }
        if r == KEY_CODE_YES { return functionKey(Int32(ch)) }
        switch ch {
        case 10, 13: return .enter
        case 27: return .escape
        case 9: return .tab
        case 8, 127: return .backspace
        case 1...26: return .ctrl(Character(Unicode.Scalar(UInt8(ch) + 96)))
        default:
            guard let u = Unicode.Scalar(UInt32(ch)) else { return nil }
            return .char(Character(u))
        }
    }

    private func functionKey(_ code: Int32) -> Key? {
        switch code {
        case KEY_UP: return .up
        case KEY_DOWN: return .down
        case KEY_LEFT: return .left
        case KEY_RIGHT: return .right
        case KEY_HOME: return .home
        case KEY_END: return .end
        case KEY_NPAGE: return .pageDown
        case KEY_PPAGE: return .pageUp
        case KEY_BACKSPACE: return .backspace
        case KEY_DC: return .delete
        case KEY_BTAB: return .backTab
        case KEY_ENTER: return .enter
        case KEY_RESIZE: return .resize
        case KEY_MOUSE:
            var ev = MEVENT()
            guard getmouse(&ev) == OK else { return nil }
            let kind: MouseEvent.Kind
            if ev.bstate & troupe_wheel_up() != 0 { kind = .wheelUp }
            else if ev.bstate & troupe_wheel_down() != 0 { kind = .wheelDown }
            else if ev.bstate & troupe_button1() != 0 { kind = ev.bstate & troupe_button1_released() != 0 ? .release : .click }
            else { return nil }
            return .mouse(MouseEvent(x: Int(ev.x), y: Int(ev.y), kind: kind))
        case (KEY_F0 + 1)...(KEY_F0 + 24): return .function(Int(code - KEY_F0))
        default: return nil
        }
    }

    /// Restores the terminal; safe to call more than once.
    public func end() {
        if ended { return }
        ended = true
        curs_set(1)
        endwin()
        fflush(output)
    }

    deinit {
        end()
        delscreen(screen)
    }
}
