// `troupe grid --methods` on troupe-mini: a character's tunings side by side (and `generate
// --character` with all of them at once, which a merged stage LoRA used to break), several
// characters in one grid, and bad input refused before anything is drawn.

import Foundation
import XCTest
import Pipeline
import Preview
@testable import Studio

final class GridCommandTests: XCTestCase {
    let root = NSTemporaryDirectory() + "troupe-grid-\(getpid())"
    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }
    func troupe(_ a: [String]) throws -> TroupeRun { try TroupeRun.run(a, environment: env) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testMethodNames() throws {
        let m = try XCTUnwrap(try GridMethod.parse("prompt, stages+oneactor,stage2,identity+oneactor"))
        XCTAssertEqual(m.map(\.label), ["prompt", "stages+oneactor", "stage2", "oneactor+identity"])
        XCTAssertEqual(m[1], GridMethod(stage: .latest, oneActor: true))
        XCTAssertNil(try GridMethod.parse("all"), "all is resolved per character")
        for bad in ["", "prompt,,oneactor", "dreambooth", "stage4", "stage1+stages", "oneactor+oneactor", "prompt+oneactor", "oneactor,oneactor"] {
            XCTAssertThrowsError(try GridMethod.parse(bad), bad)
        }
        XCTAssertEqual(GridMethod.all(oneActor: true, stages: true, identity: false).map(\.label), ["prompt", "stages", "oneactor", "stages+oneactor"])
        XCTAssertEqual(GridMethod.all(oneActor: false, stages: false, identity: true).map(\.label), ["prompt", "identity"])
        XCTAssertEqual(GridMethod(oneActor: true, v: 0.25).label, "v 0.25")
    }

    func testMethodsSideBySide() throws {
        XCTAssertEqual(try troupe(["character", "new", "Ada", "--prompt", "a knight with red hair", "--base-word", "knight", "--seed", "7"]).status, 0)
        XCTAssertEqual(try troupe(["character", "new", "Bo", "--prompt", "a robot in a teal outfit", "--base-word", "robot"]).status, 0)
        XCTAssertEqual(try troupe(["generate", "--prompt", "a knight with red hair", "--seed", "7", "--steps", "8", "-o", root + "/ref.png"]).status, 0)
        XCTAssertEqual(try troupe(["character", "accept", "Ada", root + "/ref.png"]).status, 0)
        let s1 = try troupe(["tune", "stage1", "Ada", "--steps", "2"])
        XCTAssertEqual(s1.status, 0, s1.stderr)
        let oa = try troupe(["tune", "oneactor", "Ada", "--steps", "2", "--auxiliaries", "1"])
        XCTAssertEqual(oa.status, 0, oa.stderr)

        let show = try troupe(["character", "show", "Ada"])
        XCTAssertTrue(show.stdout.contains("tuned      OneActor, stage 1"), show.stdout)
        let shown = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try troupe(["character", "show", "Bo", "--json"]).stdout.utf8)) as? [String: Any])
        XCTAssertEqual(shown["tunings"] as? [String], [])

        // generate --character with the stage LoRA, OneActor and the identity embedding at once.
        let g = try troupe(["generate", "--character", "Ada", "--seed", "5", "--steps", "6", "--identity-scale", "0.5", "-o", root + "/g.png"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let params = try XCTUnwrap(try PNGCodec.readText(path: root + "/g.png").first { $0.0 == GenerationParameters.chunkKey }?.1)
        for field in ["Character LoRA: stage1", "OneActor v:", "Identity scale: 0.5"] { XCTAssertTrue(params.contains(field), params) }

        let prompts = root + "/prompts.txt"
        try "{} waving, smiling, in a forest, front view\n{} walking, sad, at night, side view\n".write(toFile: prompts, atomically: true, encoding: .utf8)
        // Every tuning Ada has, alone and together, judged per column.
        let grid = try troupe(["grid", "--character", "Ada", "--methods", "all", "--prompts", prompts, "--steps", "4", "-o", root + "/all.png"])
        XCTAssertEqual(grid.status, 0, grid.stderr)
        for column in ["prompt", "stages", "oneactor", "identity", "stages+oneactor+identity"] {
            XCTAssertTrue(grid.stderr.contains("\n\(column): identity consistency"), "\(column): \(grid.stderr)")
        }
        let image = try PNGCodec.read(path: root + "/all.png")
        let narrow = try troupe(["grid", "--character", "Ada", "--methods", "prompt,stage1", "--prompts", prompts, "--steps", "4", "-o", root + "/s.png"])
        XCTAssertEqual(narrow.status, 0, narrow.stderr)
        XCTAssertLessThan(try PNGCodec.read(path: root + "/s.png").width, image.width, "two columns, not five")

        // In one process, as the grid draws them: a stage column differs from the base model's,
        // its LoRA is detached after it (the base model's column again is the same image), and
        // OneActor's files load while a stage LoRA is merged.
        let store = CharacterStore(root: root)
        let pipe = try ModelLocator.loadPipeline(nil).0
        let ada = GridCharacter(record: try store.load("Ada"), pipeline: pipe, store: store)
        var r = pipe.request(prompt: "a knight with red hair waving"); r.seed = 3; r.steps = 6
        let before = try ada.draw(GridMethod(), [r], eta2: nil) { true }
        let staged = try ada.draw(GridMethod(stage: .stage(1)), [r], eta2: nil) { true }
        let both = try ada.draw(GridMethod(stage: .latest, oneActor: true), [r], eta2: nil) { true }
        let after = try ada.draw(GridMethod(), [r], eta2: nil) { true }
        XCTAssertNotEqual(staged[0].pixels, before[0].pixels)
        XCTAssertNotEqual(both[0].pixels, staged[0].pixels)
        XCTAssertEqual(after[0].pixels, before[0].pixels, "the stage LoRA is detached after its column")

        // Two characters: `all` is what both have (Bo has no tuning: the base model alone), rows for each.
        let two = try troupe(["grid", "--character", "Ada", "--character", "Bo", "--methods", "all", "--prompts", prompts, "--steps", "4", "--seeds", "2", "-o", root + "/two.png"])
        XCTAssertEqual(two.status, 0, two.stderr)
        XCTAssertTrue(two.stderr.contains("\nprompt: identity consistency"), two.stderr)
        XCTAssertFalse(two.stderr.contains("oneactor:"), two.stderr)
        XCTAssertGreaterThan(try PNGCodec.read(path: root + "/two.png").height, image.height * 2)

        // Bad input: refused before anything is drawn, nothing written.
        for (args, message) in [
            (["--character", "Ada", "--character", "Bo", "--methods", "oneactor"], "Bo has no OneActor tuning"),
            (["--character", "Ada", "--methods", "stage2"], "run `troupe tune stage2 Ada`"),
            (["--character", "Ada", "--methods", "dreambooth"], "unknown method 'dreambooth'"),
            (["--character", "Ada", "--methods", "prompt", "--v", "0,1"], "give one of them"),
            (["--character", "Ada", "--seeds", "9"], "--seeds must be in 1…8"),
            (["--methods", "prompt"], "--character NAME is required"),
        ] {
            let r = try troupe(["grid"] + args + ["--prompts", prompts, "--steps", "4", "-o", root + "/bad.png"])
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/bad.png"))
        }
    }
}
