// Compare: consistency grids of the selected character — rows are prompts, columns either
// OneActor's interpolation weight v from the base model (0) to the character (1), or the methods
// side by side (the base model, each tuning the character has, all of them together) — made by
// `troupe grid` as a background child, saved under grids/, and shown here.

import Foundation
import TUI

final class CompareScreen: StudioScreen {
    enum Action { case make, makeMethods }
    let id = ScreenID.compare
    var list = ListView()
    private(set) var character: String?
    private(set) var grids: [String] = []
    private var job: (pid: pid_t, log: String, output: String)?

    let keys = ScreenKeys<Action>([
        KeyBinding([.char("m")], "make grid", help: "make a grid: the evaluation prompts × v = 0, 0.25 … 1 (needs OneActor)", .make),
        KeyBinding([.char("M")], "methods grid", help: "make a grid of methods side by side: the evaluation prompts × the base model, each tuning the character has and all of them together", .makeMethods),
        KeyBinding(help: [.up, .char("k"), .down, .char("j")], "select a grid"),
    ])
    var keyHelp: [(key: String, hint: String, help: String)] { keys.help }

    func activate(_ ctx: StudioContext) { character = ctx.selectedCharacter; rescan(ctx) }

    private func rescan(_ ctx: StudioContext) {
        guard let name = character else { grids = []; list.items = []; return }
        let dir = ctx.store.folder(name) + "/grids"
        grids = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".png") }.sorted().reversed().map { dir + "/" + $0 }
        list.items = grids.map { ($0 as NSString).lastPathComponent }
    }

    func tick(_ ctx: StudioContext) -> Bool {
        guard let j = job, let code = DetachedJob.reap(j.pid) else { return false }
        job = nil
        if code == 0 { ctx.say("grid saved: \(j.output)", role: .good) } else {
            ctx.fail("grid: " + DetachedJob.failure(log: j.log, status: code))
        }
        rescan(ctx)
        return true
    }

    func handle(_ key: Key, _ ctx: StudioContext) -> Bool {
        if list.handle(key) { return true }
        guard let action = keys.action(key) else { return false }
        guard let name = character else { ctx.fail("select a character first (screen 1)"); return true }
        guard job == nil else { ctx.fail("a grid is being made"); return true }
        let dir = ctx.store.folder(name) + "/grids"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let kind = action == .make ? "v" : "methods"
        let out = "\(dir)/\(StudioContext.fileStamp())-\(kind).png", log = dir + "/.launch.log"
        let columns = action == .make ? [] : ["--methods", "all"]
        do {
            let pid = try DetachedJob.launch(arguments: ["grid", "--character", name] + columns + ["-o", out], environment: ctx.jobEnvironment, logPath: log)
            job = (pid, log, out)
            ctx.say("making a grid for \(name)…")
        } catch { ctx.fail("\(error)") }
        return true
    }

    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext) {
        guard let name = character else { ctx.drawNoCharacter(canvas, in: rect, title: "Compare"); return }
        let (left, right) = rect.splitColumns(min(34, max(26, rect.width / 4)))
        let inner = canvas.box(left, title: "Grids · \(name)", focused: true)
        list.draw(canvas, in: inner, focused: true, empty: job == nil ? "none yet — m or M makes one" : "making…")
        let selected = list.selection.map { grids[$0] }
        let pane = canvas.box(right, title: selected.map { "Rows: prompts · columns: " + ($0.hasSuffix("-methods.png") ? "methods" : "v") } ?? "Grid")
        if let selected, let img = ctx.image(at: selected) { ctx.draw(img, canvas, in: pane) }
        else if job != nil { canvas.text("rendering the grid in the background…", x: pane.x, y: pane.y, role: .dim, maxWidth: pane.width) }
    }
}
