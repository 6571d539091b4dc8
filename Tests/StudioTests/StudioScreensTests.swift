// The studio's screens without a terminal: StudioApp draws into a TextCanvas and takes keys
// directly, so screen logic (dialogs, focus, sliders → settings, job status) is tested in
// process. The renderer loads troupe-mini when the Generate screen first opens.

import Foundation
import XCTest
import TUI
import Pipeline
@testable import Studio

final class StudioScreensTests: XCTestCase {
    var root = ""
    override func setUp() {
        setlocale(LC_CTYPE, "C.UTF-8")
        root = NSTemporaryDirectory() + "troupe-screens-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func makeApp() -> StudioApp {
        StudioApp(ctx: StudioContext(store: CharacterStore(root: root), environment: ["TROUPE_HOME": root], useSixel: false, cellSize: (10, 20)))
    }

    func frame(_ app: StudioApp, _ w: Int = 100, _ h: Int = 30) -> TextCanvas {
        let c = TextCanvas(width: w, height: h)
        app.draw(c)
        return c
    }

    func testTinyTerminalAndHelpOverlay() {
        let app = makeApp()
        XCTAssertTrue(frame(app, 40, 10).string.contains("enlarge the terminal"))
        XCTAssertTrue(frame(app, 40, 10).string.contains("needs 72×20"))
        app.handle(.char("?"))
        let help = frame(app).string
        XCTAssertTrue(help.contains("Characters — keys"))
        XCTAssertTrue(help.contains("new character from a prompt"))
        XCTAssertTrue(help.contains("switch screen"))
        app.handle(.char("x"))                                   // any key closes it
        XCTAssertFalse(frame(app).string.contains("Characters — keys"))
    }

    func testNewCharacterDialogValidatesThenCreates() throws {
        let app = makeApp()
        app.handle(.char("n"))
        XCTAssertTrue(frame(app).string.contains("New character"))
        for ch in "Ada" { app.handle(.char(ch)) }
        app.handle(.tab)
        for ch in "a knight in a forest" { app.handle(.char(ch)) }
        app.handle(.tab)
        for ch in "wizard" { app.handle(.char(ch)) }             // not a word of the prompt
        app.handle(.tab); app.handle(.tab); app.handle(.tab)     // past Seed and Model to Create
        app.handle(.enter)
        XCTAssertTrue(frame(app).string.contains("the base word must be a word of the prompt"))
        XCTAssertTrue(try CharacterStore(root: root).list().records.isEmpty, "nothing written for a refused dialog")
        app.handle(.escape)
        XCTAssertFalse(frame(app).string.contains("New character"))
        app.handle(.char("n"))
        for ch in "Ada" { app.handle(.char(ch)) }
        app.handle(.tab); for ch in "a knight in a forest" { app.handle(.char(ch)) }
        app.handle(.tab); for ch in "knight" { app.handle(.char(ch)) }
        app.handle(.tab); for ch in "42" { app.handle(.char(ch)) }
        app.handle(.tab); for ch in "/no/such/model" { app.handle(.char(ch)) }
        app.handle(.enter); app.handle(.enter)
        XCTAssertTrue(frame(app).string.contains("not found"), "a model that is not there is refused in the dialog")
        app.handle(.backTab)                                     // from Create back to Model
        app.handle(.ctrl("u"))
        app.handle(.enter); app.handle(.enter)
        let r = try CharacterStore(root: root).load("Ada")
        XCTAssertEqual(r.seed, 42); XCTAssertEqual(r.baseWord, "knight")
        XCTAssertEqual(app.current, .generate, "a new character opens Generate")
        let g = try XCTUnwrap(app.screen as? GenerateScreen)
        XCTAssertEqual(g.settings.prompt, "a knight in a forest"); XCTAssertEqual(g.settings.seed, 42)
        // Sliders change the one request: CFG is the third control.
        app.handle(.down); app.handle(.down)
        let before = g.settings.cfg
        app.handle(.right)
        XCTAssertEqual(g.settings.cfg, before + 0.5)
        app.handle(.down); app.handle(.down)                     // Steps, then Seed
        app.handle(.char("L"))
        XCTAssertEqual(g.settings.seed, 142)
        let req = g.settings.request(try ModelLocator.loadPipeline(nil).0, withCharacter: false)
        XCTAssertEqual(req.seed, 142); XCTAssertEqual(req.guidanceScale, before + 0.5)
        // Editing the prompt takes every key, q included, until Enter.
        app.handle(.up); app.handle(.up); app.handle(.up); app.handle(.up)
        app.handle(.enter)
        XCTAssertTrue(g.isEditing)
        for ch in ", quietly" { app.handle(.char(ch)) }
        XCTAssertFalse(app.ctx.quitRequested)
        app.handle(.enter)
        XCTAssertEqual(g.settings.prompt, "a knight in a forest, quietly")
        app.handle(.char("q"))
        XCTAssertTrue(app.ctx.quitRequested)
    }

    /// Through a stage LoRA the Generate screen samples at the model's guidance for that: when a
    /// LoRA appears (a job finished) while the slider still holds the plain default, and when the
    /// screen opens on a character that has one.
    func testGuidanceFollowsTheCharactersStageLoRA() throws {
        let store = CharacterStore(root: root)
        _ = try store.create("Ada", prompt: "a knight in a forest", baseWord: "knight", seed: 1, model: ModelLocator.defaultModelName)
        let d = BaseModelArchitecture.mini.recommended
        let loraCFG = try XCTUnwrap(d.loraGuidanceScale)
        let app = makeApp()
        app.ctx.selectedCharacter = "Ada"
        app.show(.generate)
        let g = try XCTUnwrap(app.screen as? GenerateScreen)
        XCTAssertEqual(g.settings.cfg, d.guidanceScale)
        try FileManager.default.createDirectory(atPath: store.folder("Ada") + "/lora", withIntermediateDirectories: true)
        try Data("not read here".utf8).write(to: URL(fileURLWithPath: store.folder("Ada") + "/lora/stage1.safetensors"))
        app.show(.characters); app.show(.generate)
        XCTAssertEqual(g.settings.cfg, loraCFG, "the untouched slider moves to the LoRA's guidance")
        let other = makeApp()
        other.ctx.selectedCharacter = "Ada"
        other.show(.generate)
        XCTAssertEqual(try XCTUnwrap(other.screen as? GenerateScreen).settings.cfg, loraCFG)
        // The LoRA slider starts at the model's multiplier for a stage LoRA.
        XCTAssertNotEqual(d.stageLoRAScale, 1)
        XCTAssertEqual(try XCTUnwrap(other.screen as? GenerateScreen).settings.loraScale, d.stageLoRAScale)
        XCTAssertTrue(frame(other).string.contains("LoRA scale"), frame(other).string)
    }

    /// Another process (a job, the CLI) changes a character: the screen's rescan reports it, so
    /// the studio redraws the details without a key press, not only when a name comes or goes.
    func testCharactersScreenRedrawsWhenARecordChanges() throws {
        let store = CharacterStore(root: root)
        _ = try store.create("Bo", prompt: "a robot", baseWord: "robot", seed: 1, model: ModelLocator.defaultModelName)
        _ = try store.update("Bo") { r, _ in r.runs.append(.init(id: "oneactor-x", kind: "oneactor", status: "running", created: Date())) }
        let app = makeApp()
        XCTAssertTrue(frame(app).string.contains("1 (running: oneactor)"))
        Thread.sleep(forTimeInterval: 3.2)
        XCTAssertFalse(app.screen.tick(app.ctx), "nothing changed: no redraw")
        _ = try store.update("Bo") { r, _ in r.runs[0].status = "finished" }
        Thread.sleep(forTimeInterval: 3.2)
        XCTAssertTrue(app.screen.tick(app.ctx), "a record's change is a change to draw")
        let s = frame(app).string
        XCTAssertTrue(s.contains("runs") && !s.contains("running: oneactor"), s)
        XCTAssertTrue(s.contains("no target yet"), s)
        // Tuned with OneActor and still no accepted target: the details say what it tuned on.
        let projector = CharacterArtifacts(folder: store.folder("Bo")).projector
        try FileManager.default.createDirectory(atPath: (projector as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: projector, contents: Data())
        let tuned = frame(app, 140, 30).string
        XCTAssertTrue(tuned.contains("OneActor") && tuned.contains("no accepted target (OneActor tuned on the prompt at seed 1)"), tuned)
    }

    func testDeleteAsksFirstAndMovesToTrash() throws {
        let store = CharacterStore(root: root)
        _ = try store.create("Bo", prompt: "a robot", baseWord: "robot", seed: 1, model: ModelLocator.defaultModelName)
        let app = makeApp()
        XCTAssertTrue(frame(app).string.contains("▸ Bo"))
        app.handle(.char("d"))
        XCTAssertTrue(frame(app).string.contains("Delete Bo?"))
        app.handle(.escape)
        XCTAssertEqual(store.list().records.count, 1)
        app.handle(.char("d")); app.handle(.char("d"))           // the button's first letter chooses it
        XCTAssertEqual(store.list().records.count, 0)
        XCTAssertFalse((try FileManager.default.contentsOfDirectory(atPath: root + "/trash")).isEmpty)
    }

    func testTuneScreenReadsARunFromItsFiles() throws {
        let store = CharacterStore(root: root)
        _ = try store.create("Cy", prompt: "a wizard", baseWord: "wizard", seed: 1, model: ModelLocator.defaultModelName)
        _ = try store.update("Cy") { r, _ in r.runs.append(.init(id: "stage1-x", kind: "stage1", status: "running", created: Date())) }
        let dir = store.folder("Cy") + "/runs/stage1-x"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let log = JobLog(path: dir + "/metrics.jsonl")
        log.append(.started(run: "stage1-x", kind: "stage1", character: "Cy", step: 0, total: 100))
        for s in 1...40 { log.append(.step(step: s, total: 100, losses: ["loss": 0.5 / Float(s)], lr: 1e-4, itPerSecond: 10, eta: 6)) }
        let app = makeApp()
        app.ctx.selectedCharacter = "Cy"
        app.show(.tune)
        let s = frame(app, 110, 34).string
        XCTAssertTrue(s.contains("stopped — resume with r"), "a 'running' run with no live process is reported as stopped:\n\(s)")
        XCTAssertTrue(s.contains("step 40/100")); XCTAssertTrue(s.contains("■ loss"))
        log.append(.step(step: 41, total: 100, losses: ["loss": 0.01], lr: 1e-4, itPerSecond: 10, eta: 6))
        _ = app.screen.tick(app.ctx)
        XCTAssertTrue(frame(app, 110, 34).string.contains("step 41/100"))
        app.handle(.char("c"))
        XCTAssertTrue(frame(app, 110, 34).string.contains("not running"))
        // The job ends: its record says so and no event follows. The tick that re-reads the
        // record reports the change, so the studio redraws the list without a key press (it
        // went on saying "stopped — resume with r" over a finished run until a key came).
        _ = try store.update("Cy") { r, _ in r.runs[0].status = "finished" }
        Thread.sleep(forTimeInterval: 1.2)
        XCTAssertTrue(app.screen.tick(app.ctx), "a run's new status is a change to draw")
        let done = frame(app, 110, 34).string
        XCTAssertTrue(done.contains("finished 41/100") && !done.contains("stopped"), done)
    }
}
