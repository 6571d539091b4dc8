// `troupe tune stages` on troupe-mini: stage 1, 2 and 3 each a run with its own LoRA; a
// resumed `stages` skips the finished stages; `generate --character` uses the latest stage.

import Foundation
import XCTest
import Pipeline
import Preview
@testable import Studio

final class StagesCommandTests: XCTestCase {
    let root = NSTemporaryDirectory() + "troupe-stages-\(getpid())"
    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }
    func troupe(_ a: [String]) throws -> TroupeRun { try TroupeRun.run(a, environment: env) }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    func testStagesRunInOrderAndGenerateUsesTheLast() throws {
        XCTAssertEqual(try troupe(["character", "new", "Ada", "--prompt", "a knight with red hair", "--base-word", "knight"]).status, 0)
        let noRefs = try troupe(["tune", "stages", "Ada", "--steps", "3"])
        XCTAssertEqual(noRefs.status, 2); XCTAssertTrue(noRefs.stderr.contains("no accepted references"), noRefs.stderr)
        XCTAssertEqual(try troupe(["generate", "--prompt", "a knight with red hair", "--seed", "3", "--steps", "8", "-o", root + "/ref.png"]).status, 0)
        XCTAssertEqual(try troupe(["character", "accept", "Ada", root + "/ref.png"]).status, 0)
        let early = try troupe(["tune", "stage2", "Ada", "--steps", "3"])
        XCTAssertEqual(early.status, 2); XCTAssertTrue(early.stderr.contains("run `troupe tune stage1 Ada` first"), early.stderr)
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: root + "/characters/Ada/runs")) ?? []
        XCTAssertEqual(runs, [], "a run refused before its first step leaves no folder")
        let run = try troupe(["tune", "stages", "Ada", "--steps", "3"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lora = root + "/characters/Ada/lora/"
        for s in 1...3 {
            let f = try SafetensorsFile(path: lora + "stage\(s).safetensors")
            XCTAssertEqual(f.metadata["troupe_stage"], String(s))
        }
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/characters/Ada/character.json"))) as? [String: Any])
        let kinds = (record["runs"] as? [[String: Any]])?.compactMap { $0["kind"] as? String }
        XCTAssertEqual(kinds, ["stage1", "stage2", "stage3"])
        // Resumed with everything finished: nothing to do, no new runs.
        XCTAssertEqual(try troupe(["tune", "stages", "Ada", "--resume"]).status, 0)
        let again = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/characters/Ada/character.json"))) as? [String: Any])
        XCTAssertEqual((again["runs"] as? [Any])?.count, 3)
        let g = try troupe(["generate", "--character", "Ada", "--seed", "5", "--steps", "8", "-o", root + "/g.png"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let params = try XCTUnwrap(try PNGCodec.readText(path: root + "/g.png").first { $0.0 == GenerationParameters.chunkKey }?.1)
        XCTAssertTrue(params.contains("Character LoRA: stage3"), params)
        // Through its stage LoRA the character samples at the model's guidance for that, not the plain one.
        let defaults = BaseModelArchitecture.mini.recommended
        let loraCFG = try XCTUnwrap(defaults.loraGuidanceScale)
        XCTAssertNotEqual(loraCFG, defaults.guidanceScale)
        XCTAssertEqual(GenerationParameters(text: params).cfgScale, Double(loraCFG), params)
        // …and at the model's multiplier for a stage LoRA, recorded, so --from-png re-makes it.
        XCTAssertNotEqual(defaults.stageLoRAScale, 1)
        XCTAssertTrue(params.contains("Character LoRA scale: \(GenerationPNG.text(defaults.stageLoRAScale))"), params)
        XCTAssertEqual(try troupe(["generate", "--from-png", root + "/g.png", "-o", root + "/g2.png"]).status, 0)
        XCTAssertEqual(try PNGCodec.read(path: root + "/g2.png").pixels, try PNGCodec.read(path: root + "/g.png").pixels)
        let plain = try XCTUnwrap(try PNGCodec.readText(path: root + "/ref.png").first { $0.0 == GenerationParameters.chunkKey }?.1)
        XCTAssertEqual(GenerationParameters(text: plain).cfgScale, Double(defaults.guidanceScale), plain)
        // --cfg still wins.
        XCTAssertEqual(try troupe(["generate", "--character", "Ada", "--seed", "5", "--steps", "8", "--cfg", "5", "-o", root + "/c.png"]).status, 0)
        let explicit = try XCTUnwrap(try PNGCodec.readText(path: root + "/c.png").first { $0.0 == GenerationParameters.chunkKey }?.1)
        XCTAssertEqual(GenerationParameters(text: explicit).cfgScale, 5, explicit)

        // --text-encoder-rank, --conv-rank and --ff-rank: stage 1 also adapts the text encoder and
        // the feed-forward layers and sets the convolutions' rank; stage 2 continues those adapters
        // (their ranks read from stage 1's file, the attention rank apart) and generate loads them.
        XCTAssertEqual(try troupe(["character", "new", "Bo", "--prompt", "a knight with red hair", "--base-word", "knight"]).status, 0)
        XCTAssertEqual(try troupe(["character", "accept", "Bo", root + "/ref.png"]).status, 0)
        let badRank = try troupe(["tune", "stage1", "Bo", "--steps", "2", "--text-encoder-rank", "300"])
        XCTAssertEqual(badRank.status, 2); XCTAssertTrue(badRank.stderr.contains("--text-encoder-rank must be in 0…256"), badRank.stderr)
        let badConv = try troupe(["tune", "stage1", "Bo", "--steps", "2", "--conv-rank", "300"])
        XCTAssertEqual(badConv.status, 2); XCTAssertTrue(badConv.stderr.contains("--conv-rank must be in 0…256"), badConv.stderr)
        let badFF = try troupe(["tune", "stage1", "Bo", "--steps", "2", "--ff-rank", "300"])
        XCTAssertEqual(badFF.status, 2); XCTAssertTrue(badFF.stderr.contains("--ff-rank must be in 0…256"), badFF.stderr)
        XCTAssertEqual(try troupe(["tune", "stage1", "Bo", "--steps", "2", "--text-encoder-rank", "2", "--conv-rank", "3", "--ff-rank", "5"]).status, 0)
        let s2 = try troupe(["tune", "stage2", "Bo", "--steps", "2"])
        XCTAssertEqual(s2.status, 0, s2.stderr)
        let stage2 = try SafetensorsFile(path: root + "/characters/Bo/lora/stage2.safetensors").entries
        let te = stage2.filter { $0.key.hasPrefix("text_encoder.") && $0.key.hasSuffix("lora_A.weight") }
        XCTAssertFalse(te.isEmpty, "stage 2 kept the text encoder's adapters")
        XCTAssertTrue(te.allSatisfy { $0.value.shape[0] == 2 })
        let convs = stage2.filter { $0.key.hasSuffix("lora_A.weight") && $0.value.shape.count == 4 }
        XCTAssertFalse(convs.isEmpty, "stage 2 kept the convolutions' adapters")
        XCTAssertTrue(convs.allSatisfy { $0.value.shape[0] == 3 }, "at stage 1's conv rank")
        let unet2D = stage2.filter {
            $0.key.hasPrefix("unet.") && $0.key.hasSuffix("lora_A.weight") && $0.value.shape.count == 2
        }
        let ff = unet2D.filter { $0.key.contains(".ff.net.") }
        XCTAssertFalse(ff.isEmpty, "stage 2 kept the feed-forward adapters")
        XCTAssertTrue(ff.allSatisfy { $0.value.shape[0] == 5 }, "at stage 1's feed-forward rank")
        XCTAssertTrue(unet2D.filter { !$0.key.contains(".ff.net.") }.allSatisfy { $0.value.shape[0] == 4 }, "attention at the default rank")
        XCTAssertEqual(try troupe(["generate", "--character", "Bo", "--seed", "5", "--steps", "4", "-o", root + "/bo.png"]).status, 0)
    }

    /// `--summary-offset K`: stage 1 learns the pivotal offset with its LoRA and writes it into its
    /// file with the base word and K; stage 2 continues it at K; `generate` applies it wherever the
    /// file is used (with --character and --lora), and a prompt without the base word is a clear error.
    func testSummaryOffsetFromTuneToGenerate() throws {
        XCTAssertEqual(try troupe(["character", "new", "Cy", "--prompt", "a knight with red hair", "--base-word", "knight"]).status, 0)
        XCTAssertEqual(try troupe(["generate", "--prompt", "a knight with red hair", "--seed", "3", "--steps", "8", "-o", root + "/ref.png"]).status, 0)
        XCTAssertEqual(try troupe(["character", "accept", "Cy", root + "/ref.png"]).status, 0)
        let bad = try troupe(["tune", "stage1", "Cy", "--steps", "2", "--summary-offset=-1"])
        XCTAssertEqual(bad.status, 2); XCTAssertTrue(bad.stderr.contains("--summary-offset must be a number in 0…10000"), bad.stderr)
        XCTAssertEqual(try troupe(["tune", "stage1", "Cy", "--steps", "3", "--summary-offset", "30"]).status, 0)
        let lora = root + "/characters/Cy/lora/"
        let one = try LoRAFile(path: lora + "stage1.safetensors")
        let d1 = try XCTUnwrap(one.summaryOffset)
        XCTAssertEqual(d1.baseWord, "knight"); XCTAssertGreaterThan(d1.delta.square().sum().item(), 0)
        XCTAssertEqual(try SafetensorsFile(path: lora + "stage1.safetensors").metadata[SummaryOffset.learningRateScaleField], "30.0")
        let s2 = try troupe(["tune", "stage2", "Cy", "--steps", "2"])
        XCTAssertEqual(s2.status, 0, s2.stderr)
        let two = try XCTUnwrap(try LoRAFile(path: lora + "stage2.safetensors").summaryOffset)
        XCTAssertEqual(try SafetensorsFile(path: lora + "stage2.safetensors").metadata[SummaryOffset.learningRateScaleField], "30.0", "continued at stage 1's rate")
        XCTAssertNotEqual(two.delta.toArray(), d1.delta.toArray(), "stage 2 trains it on")
        // Stage 3 with rows naming a view too (--pose-view): the run's saved config has it.
        let s3 = try troupe(["tune", "stage3", "Cy", "--steps", "2", "--pose-view"])
        XCTAssertEqual(s3.status, 0, s3.stderr)
        let states = FileManager.default.enumerator(atPath: root + "/characters/Cy")!.compactMap { $0 as? String }.filter { $0.hasSuffix("state.json") }
        let configs = try states.map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/characters/Cy/" + $0))) as? [String: Any]) }
            .compactMap { $0["config"] as? [String: Any] }
        XCTAssertEqual(configs.filter { $0["stage"] as? Int == 3 }.compactMap { $0["poseRowsNameView"] as? Bool }.first, true, "\(states)")
        XCTAssertTrue(configs.filter { $0["stage"] as? Int == 2 }.allSatisfy { $0["poseRowsNameView"] as? Bool == false })
        let g = try troupe(["generate", "--character", "Cy", "--seed", "5", "--steps", "4", "-o", root + "/cy.png"])
        XCTAssertEqual(g.status, 0, g.stderr)
        // The same file without its offset makes another image: generate applies it.
        let f = try SafetensorsFile(path: lora + "stage2.safetensors")
        var stripped: [String: Tensor] = [:]
        for k in f.names where k != SummaryOffset.key { stripped[k] = try f.tensor(k).clone() }
        try SafetensorsWriter.write(stripped, to: root + "/stripped.safetensors", metadata: ["format": "pt"])
        for (file, out) in [(lora + "stage2.safetensors", "/with.png"), (root + "/stripped.safetensors", "/without.png")] {
            let r = try troupe(["generate", "--prompt", "a knight with red hair", "--lora", file, "--seed", "5", "--steps", "4", "-o", root + out])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        XCTAssertNotEqual(try PNGCodec.read(path: root + "/with.png").pixels, try PNGCodec.read(path: root + "/without.png").pixels)
        let noWord = try troupe(["generate", "--prompt", "a wizard", "--lora", lora + "stage2.safetensors", "--seed", "5", "--steps", "4", "-o", root + "/w.png"])
        XCTAssertEqual(noWord.status, 2); XCTAssertTrue(noWord.stderr.contains("summary offset") && noWord.stderr.contains("knight"), noWord.stderr)
    }

    /// `tune stages --soup 2`: the three stages tuned twice (member 0 from the character's seed,
    /// member 1 from it + 7919), each member's LoRAs under lora/soup/<k>/, and each stage's LoRA
    /// in lora/ their norm-matched soup, which `generate --character` samples like any stage LoRA.
    func testStagesSoupTunesEachMemberAndWritesTheirSoup() throws {
        XCTAssertEqual(try troupe(["character", "new", "Ada", "--prompt", "a knight with red hair", "--base-word", "knight"]).status, 0)
        XCTAssertEqual(try troupe(["generate", "--prompt", "a knight with red hair", "--seed", "3", "--steps", "8", "-o", root + "/ref.png"]).status, 0)
        XCTAssertEqual(try troupe(["character", "accept", "Ada", root + "/ref.png"]).status, 0)
        let wrongKind = try troupe(["tune", "stage1", "Ada", "--soup", "2"])
        XCTAssertEqual(wrongKind.status, 2); XCTAssertTrue(wrongKind.stderr.contains("--soup applies to `tune stages`"), wrongKind.stderr)
        let tooMany = try troupe(["tune", "stages", "Ada", "--soup", "9"])
        XCTAssertEqual(tooMany.status, 2); XCTAssertTrue(tooMany.stderr.contains("--soup must be in 1…8"), tooMany.stderr)
        let run = try troupe(["tune", "stages", "Ada", "--steps", "3", "--soup", "2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let lora = root + "/characters/Ada/lora/"
        for s in 1...3 {
            let members = try (0..<2).map { try LoRAFile(path: lora + "soup/\($0)/stage\(s).safetensors") }
            let file = try SafetensorsFile(path: lora + "stage\(s).safetensors")
            XCTAssertEqual(file.metadata["troupe_soup"], "2")
            XCTAssertEqual(file.metadata["troupe_stage"], String(s))
            var (expected, _) = try LoRASoup.file(of: members, normMatched: true)
            // troupe-mini's stages learn a summary offset: the soup's is the members' norm-matched mean.
            let offsets = members.compactMap(\.summaryOffset)
            XCTAssertEqual(offsets.count, BaseModelArchitecture.mini.recommended.loraSummaryOffset == nil ? 0 : 2)
            if !offsets.isEmpty {
                expected[SummaryOffset.key] = try SummaryOffset.soup(of: offsets, normMatched: true).delta
                XCTAssertEqual(file.metadata[SummaryOffset.baseWordField], "knight")
                XCTAssertEqual(file.metadata[SummaryOffset.learningRateScaleField], members[0].summaryOffset?.learningRateScale.map { String($0) })
            }
            XCTAssertEqual(Set(file.names), Set(expected.keys))
            for (k, t) in expected { XCTAssertEqual(try file.tensor(k).toArray(), t.toArray(), k) }
            let key = try XCTUnwrap(members[0].pairs.keys.sorted().first)
            XCTAssertNotEqual(members[0].pairs[key]?.down?.toArray(), members[1].pairs[key]?.down?.toArray(), "two tunings from two seeds")
        }
        let record = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/characters/Ada/character.json"))) as? [String: Any])
        let runs = try XCTUnwrap(record["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.compactMap { $0["kind"] as? String }, ["stage1", "stage2", "stage3", "stage1", "stage2", "stage3"])
        XCTAssertEqual(runs.compactMap { $0["member"] as? Int }, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(runs.compactMap { $0["soup"] as? Int }, [2, 2, 2, 2, 2, 2])
        // Resumed with everything finished: no new runs, the same soups.
        let before = try Data(contentsOf: URL(fileURLWithPath: lora + "stage3.safetensors"))
        XCTAssertEqual(try troupe(["tune", "stages", "Ada", "--resume", "--soup", "2"]).status, 0)
        let again = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/characters/Ada/character.json"))) as? [String: Any])
        XCTAssertEqual((again["runs"] as? [Any])?.count, 6)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: lora + "stage3.safetensors")), before)
        // Member 1's stage 3 died before writing its LoRA (kill -9: its record still says running):
        // the resumed soup finishes that run, not a new one, and writes the soups again.
        let recordPath = root + "/characters/Ada/character.json"
        var json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any])
        var edited = try XCTUnwrap(json["runs"] as? [[String: Any]])
        edited[5]["status"] = "running"; json["runs"] = edited
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: recordPath))
        try FileManager.default.removeItem(atPath: lora + "soup/1/stage3.safetensors")
        try FileManager.default.removeItem(atPath: lora + "stage3.safetensors")
        let resumed = try troupe(["tune", "stages", "Ada", "--resume", "--soup", "2"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: recordPath))) as? [String: Any])
        XCTAssertEqual((after["runs"] as? [[String: Any]])?.compactMap { $0["status"] as? String }, Array(repeating: "finished", count: 6))
        XCTAssertTrue(FileManager.default.fileExists(atPath: lora + "soup/1/stage3.safetensors"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: lora + "stage3.safetensors")), before, "the same run again, the same soup")
        let g = try troupe(["generate", "--character", "Ada", "--seed", "5", "--steps", "8", "-o", root + "/g.png"])
        XCTAssertEqual(g.status, 0, g.stderr)
        let params = try XCTUnwrap(try PNGCodec.readText(path: root + "/g.png").first { $0.0 == GenerationParameters.chunkKey }?.1)
        XCTAssertTrue(params.contains("Character LoRA: stage3"), params)
    }
}
