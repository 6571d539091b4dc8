// Generate: the prompt, the sliders, and a preview that re-renders on every change through
// the same request and pipeline as `troupe generate` (PreviewRenderer). For a character with a
// OneActor tuning the sliders include v, η1, η2 and the guidance step range; with a stage LoRA,
// its scale; with a target image and the model's identity adapter, the identity scale (0: off).
// Keys save the preview as a PNG (its parameters re-create it) or accept/reject it
// as a reference of the character.

import Foundation
import Pipeline
import Preview
import TUI

final class GenerateScreen: StudioScreen {
    enum Action { case edit, save, accept, reject, randomSeed, previous, next, rerender }
    enum Control: Equatable { case prompt, negative, cfg, steps, seed, lora, identity, v, eta1, eta2, guideFrom, guideTo, subjectMask }

    let id = ScreenID.generate
    private(set) var settings = GenerateSettings()
    private(set) var controls: [Control] = [.prompt, .negative, .cfg, .steps, .seed]
    var focus = 0
    private(set) var editing = false
    private var prompt = TextField("Prompt"), negative = TextField("Negative")
    private var sliders: [Control: Slider] = [:]
    private(set) var output: PreviewRenderer.Output?
    private(set) var history: [PreviewRenderer.Output] = []
    private var historyIndex: Int?
    private(set) var progress: (id: Int, step: Int, total: Int)?
    private(set) var error: String?
    private(set) var renders = 0
    private var hasOneActor: Bool { controls.contains(.v) }

    let keys = ScreenKeys<Action>([
        KeyBinding([.enter], "edit", help: "edit the focused text field (Enter or Esc ends)", .edit),
        KeyBinding([.char("s")], "save", help: "save the preview as a PNG with its parameters", .save),
        KeyBinding([.char("a")], "accept", help: "accept the preview as a reference of the character", .accept),
        KeyBinding([.char("x")], "reject", help: "reject the preview (kept apart, never trained on)", .reject),
        KeyBinding([.char("R")], "new seed", help: "a random seed", .randomSeed),
        KeyBinding([.char("<"), .char(",")], "", help: "previous preview in the history", statusBar: false, .previous),
        KeyBinding([.char(">"), .char(".")], "", help: "next preview in the history", statusBar: false, .next),
        KeyBinding([.char("r")], "", help: "render again", statusBar: false, .rerender),
        KeyBinding(help: [.up, .char("k"), .down, .char("j")], "move between settings"),
        KeyBinding(help: [.left, .char("h"), .right, .char("l")], "slider: step (H/L or PgDn/PgUp: coarse; Home/End: ends)"),
    ])
    var keyHelp: [(key: String, hint: String, help: String)] { keys.help }
    var isEditing: Bool { editing }

    func activate(_ ctx: StudioContext) {
        guard settings.character != ctx.selectedCharacter || sliders.isEmpty else { refreshTuning(ctx); return }
        do {
            if let name = ctx.selectedCharacter {
                let r = try ctx.store.load(name)
                let model = r.model == ModelLocator.defaultModelName ? nil : r.model
                let lora = CharacterArtifacts(folder: ctx.store.folder(name)).latestLoRA != nil
                settings = GenerateSettings(character: r, defaults: try ctx.renderer.defaults(model: model), characterLoRA: lora)
            } else {
                settings = GenerateSettings(defaults: try ctx.renderer.defaults(model: nil))
            }
        } catch { ctx.fail("\(error)"); settings.character = ctx.selectedCharacter }
        prompt.set(settings.prompt); negative.set(settings.negative)
        output = nil; history = []; historyIndex = nil; error = nil
        refreshTuning(ctx)
        rebuildSliders()
        if !settings.prompt.isEmpty { submit(ctx, debounce: 0) }
    }

    /// Which tuning the character has now (a job may have finished since).
    private func refreshTuning(_ ctx: StudioContext) {
        let a = settings.character.map { CharacterArtifacts(folder: ctx.store.folder($0)) }
        let (o, l) = (a?.hasOneActor ?? false, a?.latestLoRA != nil)
        let record = settings.character.flatMap { try? ctx.store.load($0) }
        // The identity slider: a target to use as the reference and an identity adapter to read it.
        let hasTarget = record?.target != nil
        let i = hasTarget && ModelLocator.locate(ModelLocator.identityAdapterFile) != nil
        let now: [Control] = [.prompt, .negative, .cfg, .steps, .seed] + (l ? [.lora] : []) + (i ? [.identity] : [])
            + (o ? [.v, .eta1, .eta2, .guideFrom, .guideTo, .subjectMask] : [])
        guard now != controls else { return }
        // A stage LoRA that appeared since (a job finished): a guidance slider still at the
        // plain default moves to the model's default for sampling through the LoRA.
        if l, !controls.isEmpty, !controls.contains(.lora), let record, let defaults = try? ctx.renderer.defaults(model: settings.model),
           settings.cfg == record.settings.guidanceScale(defaults: defaults, characterLoRA: false) {
            settings.cfg = record.settings.guidanceScale(defaults: defaults, characterLoRA: true)
            rebuildSliders()
        }
        controls = now
        focus = min(focus, controls.count - 1)
    }

    private func rebuildSliders() {
        let s = settings
        sliders[.cfg] = Slider("CFG", value: Double(s.cfg), range: 0...20, step: 0.5, coarse: 2, decimals: 1)
        sliders[.steps] = Slider("Steps", value: Double(s.steps), range: 1...100, step: 1, coarse: 10, decimals: 0)
        sliders[.seed] = Slider("Seed", value: Double(s.seed), range: 0...Double(UInt32.max), step: 1, coarse: 100, decimals: 0)
        sliders[.lora] = Slider("LoRA scale", value: Double(s.loraScale), range: 0...2, step: 0.05, coarse: 0.25)
        sliders[.identity] = Slider("identity", value: Double(s.identityScale), range: 0...2, step: 0.05, coarse: 0.25)
        sliders[.v] = Slider("v", value: Double(s.v), range: 0...1.5, step: 0.05, coarse: 0.25)
        sliders[.eta1] = Slider("η1 target", value: Double(s.eta1 ?? s.cfg), range: 0...20, step: 0.5, coarse: 2, decimals: 1)
        sliders[.eta2] = Slider("η2 aux", value: Double(s.eta2), range: 0...10, step: 0.5, coarse: 2, decimals: 1)
        sliders[.subjectMask] = Slider("subject", value: s.subjectMask ? 1 : 0, range: 0...1, step: 1, coarse: 1, decimals: 0)
        rebuildGuideSliders()
    }

    /// The guidance-range sliders, bounded by the current step count.
    private func rebuildGuideSliders() {
        let range = settings.guidanceSteps ?? 1...settings.steps, last = Double(max(1, settings.steps))
        sliders[.guideFrom] = Slider("guide from", value: Double(range.lowerBound), range: 1...last, step: 1, coarse: 5, decimals: 0)
        sliders[.guideTo] = Slider("guide to", value: Double(range.upperBound), range: 1...last, step: 1, coarse: 5, decimals: 0)
    }

    /// Copies a slider's value into the settings; returns whether the settings changed.
    private func apply(_ c: Control) -> Bool {
        let before = settings
        guard let v = sliders[c]?.value else { return false }
        switch c {
        case .cfg: settings.cfg = Float(v)
        case .steps:
            settings.steps = Int(v)
            if let g = settings.guidanceSteps { settings.guidanceSteps = min(g.lowerBound, settings.steps)...min(g.upperBound, settings.steps) }
            rebuildGuideSliders()
        case .seed: settings.seed = UInt64(v)
        case .lora: settings.loraScale = Float(v)
        case .identity: settings.identityScale = Float(v)
        case .v: settings.v = Float(v)
        case .eta1: settings.eta1 = Float(v)
        case .eta2: settings.eta2 = Float(v)
        case .subjectMask: settings.subjectMask = v >= 0.5
        case .guideFrom, .guideTo:
            var a = Int(sliders[.guideFrom]!.value), b = Int(sliders[.guideTo]!.value)
            if a > b { if c == .guideFrom { b = a; sliders[.guideTo]!.set(Double(b)) } else { a = b; sliders[.guideFrom]!.set(Double(a)) } }
            settings.guidanceSteps = (a == 1 && b == settings.steps) ? nil : a...b
        case .prompt, .negative: break
        }
        return settings != before
    }

    func submit(_ ctx: StudioContext, debounce: Double = 0.12) {
        guard !settings.prompt.trimmingCharacters(in: .whitespaces).isEmpty else { error = "type a prompt (Enter on Prompt)"; return }
        error = nil
        renders += 1
        progress = (ctx.renderer.submit(settings, debounce: debounce), 0, settings.steps)
    }

    func receive(_ e: PreviewRenderer.Event, _ ctx: StudioContext) {
        switch e {
        case .started(let id): progress = (id, 0, settings.steps)
        case let .progress(id, step, total): progress = (id, step, total)
        case .finished(let out):
            output = out; progress = nil; error = nil
            history.append(out); if history.count > 16 { history.removeFirst() }
            historyIndex = nil
        case let .failed(_, why): progress = nil; error = why
        }
    }

    var shown: PreviewRenderer.Output? { historyIndex.map { history[$0] } ?? output }

    func handle(_ key: Key, _ ctx: StudioContext) -> Bool {
        let control = controls[focus]
        if editing {
            var field = control == .prompt ? prompt : negative
            switch key {
            case .enter, .escape:
                editing = false; field.commit()
                if control == .prompt { settings.prompt = field.text } else { settings.negative = field.text }
                if control == .prompt { prompt = field } else { negative = field }
                submit(ctx)
            default:
                _ = field.handle(key)
                if control == .prompt { prompt = field } else { negative = field }
            }
            return true
        }
        switch key {
        case .up, .char("k"): focus = max(0, focus - 1); return true
        case .down, .char("j"): focus = min(controls.count - 1, focus + 1); return true
        case .mouse(let m):
            if prompt.contains(x: m.x, y: m.y) { focus = 0; editing = true; return true }
            if negative.contains(x: m.x, y: m.y) { focus = 1; editing = true; return true }
            for (i, c) in controls.enumerated() where sliders[c] != nil {
                if sliders[c]!.handle(key) { focus = i; if apply(c) { submit(ctx) }; return true }
            }
            return false
        default: break
        }
        if sliders[control] != nil, sliders[control]!.handle(key) {
            if apply(control) { submit(ctx) }
            return true
        }
        guard let action = keys.action(key) else { return false }
        switch action {
        case .edit: if control == .prompt || control == .negative { editing = true }
        case .randomSeed:
            sliders[.seed]!.set(Double(UInt32.random(in: 0...UInt32.max)))
            if apply(.seed) { submit(ctx) }
        case .rerender: submit(ctx, debounce: 0)
        case .previous:
            guard !history.isEmpty else { break }
            historyIndex = max(0, (historyIndex ?? history.count - 1) - 1)
        case .next:
            guard let i = historyIndex else { break }
            historyIndex = i + 1 < history.count - 1 ? i + 1 : nil
        case .save:
            if let path = save(ctx) { ctx.say("saved \(path)", role: .good) }
        case .accept, .reject:
            guard let name = settings.character else { ctx.fail("select or create a character first (screen 1)"); break }
            guard let path = save(ctx) else { break }
            do {
                _ = try ctx.store.add(name, images: [path], accepted: action == .accept)
                ctx.say(action == .accept ? "accepted as a reference of \(name)" : "rejected for \(name)", role: .good)
            } catch { ctx.fail("\(error)") }
        }
        return true
    }

    /// Writes the shown preview with its parameters; returns the path (nil: nothing shown, or
    /// the write failed, with a message).
    func save(_ ctx: StudioContext) -> String? {
        guard let out = shown else { ctx.fail("nothing to save yet"); return nil }
        let dir = (settings.character.map { ctx.store.folder($0) } ?? ctx.store.root) + "/generations"
        let stamp = StudioContext.fileStamp()
        var path = "\(dir)/\(stamp)-seed\(out.settings.seed).png", n = 2
        while FileManager.default.fileExists(atPath: path) { path = "\(dir)/\(stamp)-seed\(out.settings.seed)-\(n).png"; n += 1 }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try GenerationPNG.write(out.result, index: 0, parameters: out.parameters, to: path)
            return path
        } catch { ctx.fail("cannot save: \(error)"); return nil }
    }

    func draw(_ canvas: Canvas, in rect: Rect, _ ctx: StudioContext) {
        let (left, right) = rect.splitColumns(min(48, max(36, rect.width * 2 / 5)))
        let inner = canvas.box(left, title: settings.character.map { "Settings · \($0)" } ?? "Settings", focused: true)
        var y = inner.y
        // The bottom rows: the hint (two lines with OneActor's, in the narrowest panel's width) and the editing line.
        let hint = hasOneActor ? ["v: how strong the character is", "η1/η2: guidance · subject: figure"]
                 : settings.character != nil ? ["no OneActor tuning yet (Tune, o)"] : []
        for (i, c) in controls.enumerated() where y < inner.maxY - 1 - max(1, hint.count) {
            let row = Rect(x: inner.x, y: y, width: inner.width, height: 1)
            switch c {
            case .prompt: prompt.draw(canvas, in: row, focused: focus == i, editing: editing && focus == i, labelWidth: 12)
            case .negative: negative.draw(canvas, in: row, focused: focus == i, editing: editing && focus == i, labelWidth: 12)
            default: sliders[c]?.draw(canvas, in: row, focused: focus == i, labelWidth: 12)
            }
            y += (c == .negative || c == .seed || c == controls.last { [.lora, .identity].contains($0) }) ? 2 : 1
        }
        for (i, line) in hint.enumerated() {
            canvas.text(line, x: inner.x, y: inner.maxY - 1 - hint.count + i, role: .dim, maxWidth: inner.width)
        }
        if editing { canvas.text("editing: Enter or Esc ends, ↑↓ history", x: inner.x, y: inner.maxY - 1, role: .accent, maxWidth: inner.width) }

        let pane = canvas.box(right, title: "Preview")
        let (imageRect, info) = pane.splitBottom(3)
        if let out = shown {
            ctx.draw(ShownImage(id: "render-\(out.id)", image: out.image), canvas, in: imageRect)
            let s = out.settings
            var line = "seed \(s.seed) · cfg \(GenerationPNG.text(s.cfg)) · \(s.steps) steps"
            if hasOneActor { line += " · v \(GenerationPNG.text(s.v))" }
            if s.identityScale != 0 { line += " · identity \(GenerationPNG.text(s.identityScale))" }
            line += String(format: " · %.2f s", out.seconds)
            canvas.text(line, x: info.x, y: info.y, role: .text, maxWidth: info.width)
        } else if progress == nil && error == nil {
            canvas.text("the preview appears here", x: imageRect.x, y: imageRect.y, role: .dim, maxWidth: imageRect.width)
        }
        if let p = progress {
            ProgressBar.draw(canvas, in: Rect(x: info.x, y: info.y + 1, width: info.width, height: 1),
                             fraction: Double(p.step) / Double(max(1, p.total)), label: "rendering \(p.step)/\(p.total)")
        } else if let error {
            canvas.text(error, x: info.x, y: info.y + 1, role: .error, maxWidth: info.width)
        }
        if !history.isEmpty {
            let pos = (historyIndex ?? history.count - 1) + 1
            canvas.text("history \(pos)/\(history.count)  < older · newer >", x: info.x, y: info.y + 2, role: historyIndex == nil ? .dim : .accent, maxWidth: info.width)
        }
    }
}
