// The studio's event loop (design §1: the only place that reads the keyboard and owns the
// terminal while the studio runs). Each turn: read a key (50 ms at most), hand it to the
// dialog, the help overlay, the global keys or the current screen; drain what background
// threads posted; let screens poll their files; draw when something changed. After curses has
// refreshed, sixel images are written over the cells their panes reserved.

import Foundation
import Preview
import TUI

final class StudioApp {
    static let minimumSize = (width: 72, height: 20)
    let ctx: StudioContext
    let screens: [StudioScreen]
    private(set) var current: ScreenID = .characters
    var showHelp = false
    private var tabs = Tabs(ScreenID.allCases.map(\.title))
    private var sixelShown: [String] = []
    private var sixelCache: [String: [UInt8]] = [:]

    init(ctx: StudioContext) {
        self.ctx = ctx
        screens = [CharactersScreen(), CharacterScreen(), GenerateScreen(), TuneScreen(), CompareScreen()]
        screens[0].activate(ctx)
    }

    var screen: StudioScreen { screens[current.rawValue] }

    func show(_ id: ScreenID) {
        current = id; tabs.selected = id.rawValue
        screen.activate(ctx)
    }

    static let globalHelp: [(String, String)] = [
        ("1…5 / Tab / S-Tab", "switch screen (Characters, Character, Generate, Tune, Compare)"),
        ("?", "this list of keys"), ("q / ^C", "quit (jobs keep running and reattach next time)"), ("^L", "redraw the screen"),
    ]

    /// Handles one key; returns whether anything may have changed on screen.
    func handle(_ key: Key) {
        handleKey(key)
        if let next = ctx.requestedScreen { ctx.requestedScreen = nil; show(next) }
    }

    private func handleKey(_ key: Key) {
        if key == .resize { return }
        if let (dialog, handler) = ctx.dialog {
            var d = dialog
            let outcome = d.handle(key)
            if outcome != .none { if handler(outcome, &d) { ctx.dialog = nil; return } }
            if ctx.dialog != nil { ctx.dialog = (d, handler) }
            return
        }
        if showHelp { showHelp = false; return }
        if case .mouse(let m) = key, let t = tabs.tab(atX: m.x, y: m.y), let id = ScreenID(rawValue: t) { show(id); return }
        if !screen.isEditing {
            switch key {
            case .char("q"), .ctrl("c"): ctx.quitRequested = true; return
            case .char("?"): showHelp = true; return
            case .tab: show(ScreenID(rawValue: (current.rawValue + 1) % ScreenID.allCases.count)!); return
            case .backTab: show(ScreenID(rawValue: (current.rawValue + ScreenID.allCases.count - 1) % ScreenID.allCases.count)!); return
            case .char(let c) where ("1"..."5").contains(c): show(ScreenID(rawValue: Int(String(c))! - 1)!); return
            default: break
            }
        }
        _ = screen.handle(key, ctx)
    }

    /// Draws the whole studio into `canvas`.
    func draw(_ canvas: Canvas) {
        ctx.sixelPlacements = []
        let w = canvas.width, h = canvas.height
        if w < StudioApp.minimumSize.width || h < StudioApp.minimumSize.height {
            let lines = ["enlarge the terminal", "(needs \(StudioApp.minimumSize.width)×\(StudioApp.minimumSize.height), is \(w)×\(h))", "q quits"]
            for (i, l) in lines.enumerated() where i < h {
                canvas.text(l, x: max(0, (w - TextWidth.of(l)) / 2), y: max(0, h / 2 - 1) + i, role: i == 0 ? .warning : .text, maxWidth: w)
            }
            return
        }
        tabs.draw(canvas, in: Rect(x: 0, y: 0, width: w, height: 1))
        let title = ctx.selectedCharacter.map { "◆ \($0)" } ?? "no character selected"
        canvas.text(title, x: w - TextWidth.of(title) - 1, y: 0, role: .status, maxWidth: w / 3)
        screen.draw(canvas, in: Rect(x: 0, y: 1, width: w, height: h - 2), ctx)
        let hints = screen.keyHelp.filter { !$0.hint.isEmpty }.map { ($0.key, $0.hint) } + [("?", "keys"), ("q", "quit")]
        let msg = ctx.currentMessage
        StatusBar.draw(canvas, in: Rect(x: 0, y: h - 1, width: w, height: 1), hints: hints, message: msg?.0 ?? "", messageRole: msg?.1 ?? .status)
        if showHelp { drawHelp(canvas) }
        if ctx.dialog != nil { var d = ctx.dialog!.0; d.draw(canvas); ctx.dialog!.0 = d }
        if showHelp || ctx.dialog != nil { ctx.sixelPlacements = [] }   // an overlay covers the panes
    }

    private func drawHelp(_ canvas: Canvas) {
        let own = screen.keyHelp.map { line -> (String, String) in
            let parts = line.help.split(separator: "\t", maxSplits: 1).map(String.init)
            return (parts.first ?? "", parts.count > 1 ? parts[1] : "")
        }
        let lines = own + [("", "")] + StudioApp.globalHelp
        let r = canvas.bounds.centered(width: min(canvas.width - 4, 96), height: min(canvas.height - 2, lines.count + 4))
        canvas.fill(r, role: .text)
        let inner = canvas.box(r, title: "\(current.title) — keys (any key closes)", focused: true).inset(1, 0)
        for (i, (k, d)) in lines.enumerated() where i < inner.height {
            canvas.text(k, x: inner.x, y: inner.y + i, role: .accent, maxWidth: 18)
            canvas.text(d, x: inner.x + 19, y: inner.y + i, role: .text, maxWidth: inner.width - 19)
        }
    }

    /// Writes the frame's sixel images (after `present`). A changed set of images repaints the
    /// screen first, so pixels of an image that moved or went away do not linger.
    private func emitSixels(_ term: TerminalSession) {
        let ids = ctx.sixelPlacements.map { "\($0.0.id)@\($0.1.x),\($0.1.y),\($0.1.width),\($0.1.height)" }
        if ids == sixelShown { return }
        if !sixelShown.isEmpty { term.invalidate(); term.present() }
        sixelShown = ids
        for (img, rect) in ctx.sixelPlacements {
            guard let place = ImagePane.sixelPlacement(imageWidth: img.image.width, height: img.image.height, in: rect, cell: ctx.cellSize) else { continue }
            let key = "\(img.id)|\(place.width)x\(place.height)"
            if sixelCache[key] == nil {
                if sixelCache.count > 32 { sixelCache.removeAll() }
                let scaled = (try? Sixel.resizedForDisplay(img.image, width: place.width, height: place.height)) ?? img.image
                let whole = place.width > img.image.width && place.width % img.image.width == 0
                sixelCache[key] = (try? Sixel.encode(scaled, diffuse: !whole)) ?? []
            }
            if let bytes = sixelCache[key], !bytes.isEmpty { term.writeRaw(bytes, x: place.x, y: place.y) }
        }
    }

    /// Runs until `q`, ^C or a termination signal; the caller owns `term` and ends it.
    func run(_ term: TerminalSession) {
        var dirty = true
        var lastTick = Date.distantPast
        while !ctx.quitRequested && TerminalSession.pendingSignal == 0 {
            if dirty {
                term.beginFrame(); draw(term); term.present()
                if ctx.useSixel { emitSixels(term) }
                dirty = false
            }
            if let key = term.readKey(timeoutMs: 50) {
                if key == .ctrl("l") { term.invalidate(); sixelShown = [] }
                if key == .resize { sixelShown = [] }
                handle(key); dirty = true
            }
            let inbox = ctx.drain()
            if !inbox.previewEvents.isEmpty, let g = screens[ScreenID.generate.rawValue] as? GenerateScreen {
                for e in inbox.previewEvents { g.receive(e, ctx) }
                dirty = true
            }
            if Date().timeIntervalSince(lastTick) > 0.25 {
                lastTick = Date()
                for s in screens where s.tick(ctx) { if s === screen { dirty = true } }
                if ctx.expireMessage() { dirty = true }
            }
        }
        ctx.renderer.stop()
    }
}
