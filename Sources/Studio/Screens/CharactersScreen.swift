// Characters: every project in the store, filterable, with the selection's target image and
// tuning state; new (prompt, base word, seed), rename and delete (to the trash, confirmed).

import Foundation
import Pipeline
import TUI

final class CharactersScreen: StudioScreen {
    enum Action { case new, rename, delete, open, generate, tune, filter }
    let id = ScreenID.characters
    var list = ListView()
    private(set) var names: [String] = []
    private var records: [String: CharacterRecord] = [:]
    private var problems: [String] = []
    private var lastScan = Date.distantPast

    let keys = ScreenKeys<Action>([
        KeyBinding([.char("n")], "new", help: "new character from a prompt", .new),
        KeyBinding([.enter], "open", help: "open the character (references, runs)", .open),
        KeyBinding([.char("g")], "generate", help: "generate as this character", .generate),
        KeyBinding([.char("t")], "tune", help: "tuning runs of this character", .tune),
        KeyBinding([.char("r")], "rename", help: "rename the character", .rename),
        KeyBinding([.char("d"), .delete], "delete", help: "delete (moves it to the trash)", .delete),
        KeyBinding([.char("/")], "filter", help: "filter the list by typing; Esc clears", .filter),
        KeyBinding(help: [.up, .char("k"), .down, .char("j")], "move the selection"),
    ])
    var keyHelp: [(key: String, hint: String, help: String)] { keys.help }
    var isEditing: Bool { list.isFiltering }

    func activate(_ ctx: StudioContext) { reload(ctx) }

    func reload(_ ctx: StudioContext) {
        let listing = ctx.store.list()
        names = listing.records.map(\.name)
        problems = listing.errors.map { "\($0.name): \($0.reason)" }
        records = Dictionary(listing.records.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let selected = ctx.selectedCharacter
        list.items = names
        if let s = selected, let i = names.firstIndex(of: s) { list.select(item: i) }
        syncSelection(ctx)
        lastScan = Date()
    }

    private func syncSelection(_ ctx: StudioContext) { ctx.selectedCharacter = list.selection.map { names[$0] } }

    func tick(_ ctx: StudioContext) -> Bool {
        // Another process (the CLI, a job) may change the store: rescan every few seconds.
        // What the screen shows changed if a name, a record (a run that finished, a reference
        // accepted from the CLI) or a problem did: a redraw, without waiting for a key.
        guard Date().timeIntervalSince(lastScan) > 3 else { return false }
        let before = (names, records, problems)
        reload(ctx)
        return before.0 != names || before.1 != records || before.2 != problems
    }

    func handle(_ key: Key, _ ctx: StudioContext) -> Bool {
        if list.isFiltering || [.up, .down, .char("k"), .char("j"), .pageUp, .pageDown, .home, .end].contains(key) {
            let used = list.handle(key); syncSelection(ctx); return used
        }
        if case .mouse = key { let used = list.handle(key); syncSelection(ctx); return used }
        guard let action = keys.action(key) else { return false }
        let name = ctx.selectedCharacter
        switch action {
        case .filter: _ = list.handle(.char("/"))
        case .new: newCharacter(ctx)
        case .open: if name != nil { ctx.requestedScreen = .character }
        case .generate: if name != nil { ctx.requestedScreen = .generate }
        case .tune: if name != nil { ctx.requestedScreen = .tune }
        case .rename:
            guard let name else { return true }
            ctx.ask(Dialog(title: "Rename \(name)", fields: [TextField("New name", text: name)], buttons: ["Rename", "Cancel"])) { [self] outcome, d in
                guard case .chose("Rename") = outcome else { return true }
                do {
                    let r = try ctx.store.rename(name, to: d.value("New name"))
                    ctx.selectedCharacter = r.name; reload(ctx); ctx.say("renamed to \(r.name)", role: .good); return true
                } catch { d.error = "\(error)"; return false }
            }
        case .delete:
            guard let name else { return true }
            ctx.ask(Dialog(title: "Delete \(name)?", message: ["\(name) moves to the trash (troupe character delete --purge removes it for good)."],
                           buttons: ["Delete", "Cancel"])) { [self] outcome, d in
                guard case .chose("Delete") = outcome else { return true }
                do { _ = try ctx.store.delete(name, purge: false); ctx.selectedCharacter = nil; reload(ctx); ctx.say("\(name) moved to the trash", role: .good) }
                catch { ctx.fail("\(error)") }
                return true
            }
        }
        return true
    }

    private func newCharacter(_ ctx: StudioContext) {
        let d = Dialog(title: "New character", message: ["One prompt describes the character; the base word is the noun it hangs on", "(\"a red-haired knight in a forest\" → knight). Seed empty: 1; Model empty: troupe-mini."],
                       fields: [TextField("Name"), TextField("Prompt"), TextField("Base word"), TextField("Seed"), TextField("Model")], buttons: ["Create", "Cancel"])
        ctx.ask(d) { [self] outcome, d in
            guard case .chose("Create") = outcome else { return true }
            let seedText = d.value("Seed").trimmingCharacters(in: .whitespaces)
            guard let seed = seedText.isEmpty ? 1 : UInt64(seedText) else { d.error = "the seed must be a whole number ≥ 0 (empty: 1)"; return false }
            let prompt = d.value("Prompt"), word = d.value("Base word").trimmingCharacters(in: .whitespaces)
            guard !prompt.isEmpty else { d.error = "the prompt is empty"; return false }
            guard !word.isEmpty, prompt.lowercased().contains(word.lowercased()) else { d.error = "the base word must be a word of the prompt"; return false }
            // Model: empty is the embedded default; otherwise a diffusers folder or checkpoint that exists.
            let modelText = d.value("Model").trimmingCharacters(in: .whitespaces)
            var model = ModelLocator.defaultModelName
            if !modelText.isEmpty && modelText != ModelLocator.defaultModelName {
                do { model = (try ModelLocator.resolve(modelText)).path } catch { d.error = "\(error)"; return false }
            }
            do {
                let r = try ctx.store.create(d.value("Name"), prompt: prompt, baseWord: word, seed: seed, model: model)
                ctx.selectedCharacter = r.name; reload(ctx)
                ctx.say("created \(r.name): pick a generation you like and accept it (a)", role: .good)
                ctx.requestedScreen = .generate
                return true
            } catch { d.error = "\(error)"; return false }
        }
    }

    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext) {
        let (left, right) = rect.splitColumns(max(24, rect.width / 3))
        let inner = canvas.box(left, title: "Characters (\(names.count))", focused: true)
        var listRect = inner
        if !problems.isEmpty {
            let (l, p) = inner.splitBottom(min(3, problems.count))
            listRect = l
            for (i, msg) in problems.prefix(3).enumerated() { canvas.text("! " + msg, x: p.x, y: p.y + i, role: .warning, maxWidth: p.width) }
        }
        list.draw(canvas, in: listRect, focused: true, empty: "no characters yet — press n")
        let detail = canvas.box(right, title: ctx.selectedCharacter ?? "—")
        guard let name = ctx.selectedCharacter, let r = records[name] else {
            canvas.text("Create a character with n: a name, one prompt, its base word.", x: detail.x, y: detail.y, role: .dim, maxWidth: detail.width)
            return
        }
        let (info, imageRect) = detail.splitRows(8)
        let artifacts = CharacterArtifacts(folder: ctx.store.folder(name))
        let tuned = artifacts.tunings.map(CharacterArtifacts.displayName).joined(separator: ", ")
        let running = r.runs.filter { $0.status == "running" }.map(\.kind)
        let lines: [(String, String, Role)] = [
            ("prompt", r.prompt, .text), ("base word", r.baseWord, .text), ("seed", String(r.seed), .text),
            ("model", r.model, .text),
            ("references", "\(r.references.count) accepted, \(r.rejected.count) rejected", r.references.isEmpty ? .warning : .text),
            ("tuned", tuned.isEmpty ? "not yet" : tuned, .text),
            ("runs", running.isEmpty ? "\(r.runs.count)" : "\(r.runs.count) (running: \(running.joined(separator: ", ")))", running.isEmpty ? .text : .good),
        ]
        for (i, (k, v, role)) in lines.enumerated() where i < info.height {
            canvas.text(k, x: info.x, y: info.y + i, role: .dim)
            canvas.text(v, x: info.x + 12, y: info.y + i, role: role, maxWidth: info.width - 12)
        }
        if let t = r.target, let img = ctx.image(at: ctx.store.folder(name) + "/" + t) {
            ctx.draw(img, canvas, in: imageRect)
        } else {
            // OneActor tunes on the prompt at the character's seed when no target is accepted
            // (`tune oneactor`): say so, or "tuned OneActor" beside "no target" reads as a contradiction.
            let why = artifacts.hasOneActor ? "no accepted target (OneActor tuned on the prompt at seed \(r.seed))" : "no target yet"
            canvas.text(why + ":", x: imageRect.x, y: imageRect.y + 1, role: .dim, maxWidth: imageRect.width)
            canvas.text("generate (g) and accept one (a)", x: imageRect.x, y: imageRect.y + 2, role: .dim, maxWidth: imageRect.width)
        }
    }
}
