// Character: the selected character's target, accepted references and rejected images (the
// selected one shown), and its runs. Accepting and rejecting happen on the Generate screen,
// from any generation; here the artist reviews what the tuning will learn from.

import Foundation
import TUI

final class CharacterScreen: StudioScreen {
    enum Action { case switchList, generate, tune }
    let id = ScreenID.character
    private(set) var record: CharacterRecord?
    var lists = [ListView(), ListView()]     // references, rejected
    var focused = 0

    let keys = ScreenKeys<Action>([
        KeyBinding([.char("f")], "refs/rejected", help: "switch between accepted references and rejected images", .switchList),
        KeyBinding([.char("g")], "generate", help: "generate as this character (accept or reject there)", .generate),
        KeyBinding([.char("t")], "tune", help: "tune this character on its references", .tune),
        KeyBinding(help: [.up, .char("k"), .down, .char("j")], "select an image"),
    ])
    var keyHelp: [(key: String, hint: String, help: String)] { keys.help }

    func activate(_ ctx: StudioContext) {
        guard let name = ctx.selectedCharacter else { record = nil; return }
        do { record = try ctx.store.load(name) } catch { record = nil; ctx.fail("\(error)") }
        lists[0].items = record?.references.map { describe($0) } ?? []
        lists[1].items = record?.rejected.map { describe($0) } ?? []
    }

    private func describe(_ e: CharacterRecord.ImageEntry) -> String {
        let f = DateFormatter(); f.dateFormat = "MM-dd HH:mm"
        return "\((e.file as NSString).lastPathComponent)  \(f.string(from: e.added))"
    }

    func handle(_ key: Key, _ ctx: StudioContext) -> Bool {
        if lists[focused].handle(key) { return true }
        guard let action = keys.action(key) else { return false }
        switch action {
        case .switchList: focused = 1 - focused
        case .generate: ctx.requestedScreen = .generate
        case .tune: ctx.requestedScreen = .tune
        }
        return true
    }

    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext) {
        guard let r = record else { ctx.drawNoCharacter(canvas, in: rect, title: "Character"); return }
        let (left, right) = rect.splitColumns(min(44, max(32, rect.width * 2 / 5)))
        let (refsRect, rest) = left.splitRows(max(5, left.height / 2))
        let (rejRect, runsRect) = rest.splitRows(max(4, rest.height / 2))
        lists[0].draw(canvas, in: canvas.box(refsRect, title: "References (\(r.references.count))", focused: focused == 0), focused: focused == 0,
                      empty: "none yet — accept generations (g, then a)")
        lists[1].draw(canvas, in: canvas.box(rejRect, title: "Rejected (\(r.rejected.count))", focused: focused == 1), focused: focused == 1, empty: "none")
        let runsInner = canvas.box(runsRect, title: "Runs (\(r.runs.count))")
        for (i, run) in r.runs.reversed().prefix(runsInner.height).enumerated() {
            canvas.text("\(run.kind.padding(toLength: 9, withPad: " ", startingAt: 0))\(run.status)", x: runsInner.x, y: runsInner.y + i,
                        role: run.status == "failed" ? .error : .text, maxWidth: runsInner.width)
        }
        let entries = focused == 0 ? r.references : r.rejected
        let selected = lists[focused].selection.map { entries[$0] }
        let file = selected?.file ?? r.target
        let pane = canvas.box(right, title: selected.map { ($0.file as NSString).lastPathComponent } ?? (r.target != nil ? "Target" : "—"))
        let (imageRect, info) = pane.splitBottom(2)
        if let file, let img = ctx.image(at: ctx.store.folder(r.name) + "/" + file) { ctx.draw(img, canvas, in: imageRect) }
        canvas.text(r.prompt, x: info.x, y: info.y, role: .dim, maxWidth: info.width)
        if let src = selected?.source { canvas.text("from " + src, x: info.x, y: info.y + 1, role: .dim, maxWidth: info.width) }
    }
}
