// OneActor through the CLI on a micro model trained here: `tune oneactor` as a job (events,
// cancel with a checkpoint, resume), then `generate --character` with the controls recorded in
// the PNG and `--from-png` re-making it bit for bit; bad input is a clear error.

import XCTest
import Pipeline
import Preview
@testable import Studio

final class OneActorCommandTests: XCTestCase {
    var root = ""
    override func setUp() {
        root = NSTemporaryDirectory() + "troupe-oa-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }
    func troupe(_ a: [String]) throws -> TroupeRun { try TroupeRun.run(a, environment: env) }

    func testTuneGenerateAndRemake() throws {
        let store = CharacterStore(root: root)
        _ = try store.create("Ada", prompt: "a knight waving", baseWord: "knight", seed: 3, model: JobTests.microModel)
        // No tuning yet: generate --character says how to get one.
        let early = try troupe(["generate", "--character", "Ada", "-o", root + "/x.png"])
        XCTAssertEqual(early.status, 2)
        XCTAssertTrue(early.stderr.contains("tune oneactor"), early.stderr)

        // A job: cancelled at step 5 (with a checkpoint), then resumed to the end.
        var runner: JobRunner!
        runner = JobRunner(executable: TroupeRun.binary, arguments: ["tune", "oneactor", "Ada", "--json", "--steps", "10", "--auxiliaries", "2",
                                                                     "--checkpoint-every", "4"], environment: env) { e in
            if case .step(5, _, _, _, _, _) = e { runner.cancel() }
        }
        try runner.start(); runner.wait()
        XCTAssertEqual(runner.status, .cancelled)
        guard case .cancelled(let stoppedAt)? = runner.events.last else { return XCTFail("last event \(String(describing: runner.events.last))") }
        guard case .step(_, _, let losses, _, _, _)? = runner.events.first(where: { if case .step = $0 { return true }; return false }) else {
            return XCTFail("no step event")
        }
        // troupe-mini's troupe.json recommends the identity and pose/expression terms.
        XCTAssertEqual(Set(losses.keys), ["loss", "target", "aux", "average", "identity", "pose_expression"])
        let resumed = JobRunner(executable: TroupeRun.binary, arguments: ["tune", "oneactor", "Ada", "--json", "--resume"], environment: env) { _ in }
        try resumed.start(); resumed.wait()
        XCTAssertEqual(resumed.status, .finished)
        guard case .started(_, _, _, let from, 10)? = resumed.events.first, from == stoppedAt else {
            return XCTFail("resume did not start at \(stoppedAt): \(resumed.events.first.map { "\($0)" } ?? "")")
        }
        let folder = store.folder("Ada") + "/oneactor"
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/projector.safetensors"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder + "/cluster.safetensors"))
        XCTAssertEqual(try SafetensorsFile(path: folder + "/projector.safetensors").metadata["offset_site"], "summary", "the model's recommended site")

        // Generate as the character; the PNG records the controls; --from-png re-makes it.
        let out = root + "/ada.png"
        let g = try troupe(["generate", "--character", "Ada", "--prompt", "a knight walking", "--v", "0.6", "--eta2", "1", "--guidance-steps", "1:3",
                            "--steps", "4", "--seed", "9", "-o", out])
        XCTAssertEqual(g.status, 0, g.stderr)
        let params = GenerationParameters(text: try XCTUnwrap(PNGCodec.readText(path: out).first { $0.0 == GenerationParameters.chunkKey }?.1))
        func field(_ k: String) -> String? { params.extra.first { $0.0 == k }?.1 }
        XCTAssertEqual(field("Character"), "Ada")
        XCTAssertEqual(field("OneActor v"), "0.6")
        XCTAssertEqual(field("OneActor eta2"), "1")
        XCTAssertEqual(field("Guidance steps"), "1:3")
        let again = try troupe(["generate", "--from-png", out, "-o", root + "/ada2.png"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try PNGCodec.read(path: out).pixels, try PNGCodec.read(path: root + "/ada2.png").pixels)
        XCTAssertEqual(field("Subject mask"), "off", "the micro model recommends no subject mask")
        // The subject mask: recorded, re-made by --from-png, another image than without it.
        let maskedArgs = ["generate", "--character", "Ada", "--prompt", "a knight walking", "--v", "0.6", "--steps", "4", "--seed", "9"]
        let masked = try troupe(maskedArgs + ["--subject-mask", "on", "-o", root + "/masked.png"])
        XCTAssertEqual(masked.status, 0, masked.stderr)
        let maskedParams = GenerationParameters(text: try XCTUnwrap(PNGCodec.readText(path: root + "/masked.png").first { $0.0 == GenerationParameters.chunkKey }?.1))
        XCTAssertEqual(maskedParams.extra.first { $0.0 == "Subject mask" }?.1, "on")
        let maskedAgain = try troupe(["generate", "--from-png", root + "/masked.png", "-o", root + "/masked2.png"])
        XCTAssertEqual(maskedAgain.status, 0, maskedAgain.stderr)
        XCTAssertEqual(try PNGCodec.read(path: root + "/masked.png").pixels, try PNGCodec.read(path: root + "/masked2.png").pixels)
        let unmasked = try troupe(maskedArgs + ["--subject-mask", "off", "-o", root + "/unmasked.png"])
        XCTAssertEqual(unmasked.status, 0, unmasked.stderr)
        XCTAssertNotEqual(try PNGCodec.read(path: root + "/masked.png").pixels, try PNGCodec.read(path: root + "/unmasked.png").pixels)
        for bad in [["--character", "Ada", "--subject-mask", "maybe"], ["--prompt", "x", "--subject-mask", "on"]] {
            let r = try troupe(["generate"] + bad + ["-o", root + "/y.png"])
            XCTAssertEqual(r.status, 2, "\(bad)"); XCTAssertTrue(r.stderr.contains("--subject-mask"), r.stderr)
        }
        // v = 0 differs from v = 0.6 (the offset does something), and matches plain generation.
        let zero = try troupe(["generate", "--character", "Ada", "--prompt", "a knight walking", "--v", "0", "--steps", "4", "--seed", "9",
                               "--cfg", "5", "--eta1", "5", "-o", root + "/zero.png"])
        XCTAssertEqual(zero.status, 0, zero.stderr)
        let plain = try troupe(["generate", "--model", JobTests.microModel, "--prompt", "a knight walking", "--steps", "4", "--seed", "9",
                                "--cfg", "5", "-o", root + "/plain.png"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertEqual(try PNGCodec.read(path: root + "/zero.png").pixels, try PNGCodec.read(path: root + "/plain.png").pixels)

        // Bad input: a prompt without the base word, controls without a character, bad ranges.
        let noBase = try troupe(["generate", "--character", "Ada", "--prompt", "a wizard walking", "-o", root + "/y.png"])
        XCTAssertEqual(noBase.status, 2)
        XCTAssertTrue(noBase.stderr.contains("knight"), noBase.stderr)
        let stray = try troupe(["generate", "--prompt", "x", "--v", "0.5", "-o", root + "/y.png"])
        XCTAssertEqual(stray.status, 2)
        let badRange = try troupe(["generate", "--character", "Ada", "--guidance-steps", "5:2", "-o", root + "/y.png"])
        XCTAssertEqual(badRange.status, 2)
        let nan = try troupe(["generate", "--character", "Ada", "--v", "nan", "-o", root + "/y.png"])
        XCTAssertEqual(nan.status, 2, nan.stderr)
    }

    /// `tune oneactor --identity-weight`: on troupe-mini the identity term is trained and
    /// reported in the events (also after a resume); on a model whose images the
    /// IdentityEncoder cannot read, a clear error before anything is generated.
    func testIdentityWeight() throws {
        let store = CharacterStore(root: root)
        let fixture = TroupeRun.repo.appendingPathComponent("Tests/PipelineTests/Fixtures/sd/a").path    // 16×16 images
        _ = try store.create("Bo", prompt: "a knight waving", baseWord: "knight", seed: 3, model: fixture)
        let refused = try troupe(["tune", "oneactor", "Bo", "--identity-weight", "1", "--steps", "2", "--auxiliaries", "1"])
        XCTAssertEqual(refused.status, 2); XCTAssertTrue(refused.stderr.contains("64×64"), refused.stderr)
        let negative = try troupe(["tune", "oneactor", "Bo", "--identity-weight", "-1"])
        XCTAssertEqual(negative.status, 2); XCTAssertTrue(negative.stderr.contains("--identity-weight"), negative.stderr)

        _ = try store.create("Cy", prompt: "a knight with red hair", baseWord: "knight", seed: 3, model: DefaultModelTests.folder)
        var runner: JobRunner!
        runner = JobRunner(executable: TroupeRun.binary, arguments: ["tune", "oneactor", "Cy", "--json", "--steps", "4", "--auxiliaries", "1",
                                                                     "--identity-weight", "2", "--pose-weight", "0", "--checkpoint-every", "2"], environment: env) { e in
            if case .step(2, _, _, _, _, _) = e { runner.cancel() }
        }
        try runner.start(); runner.wait()
        XCTAssertEqual(runner.status, .cancelled)
        let resumed = JobRunner(executable: TroupeRun.binary, arguments: ["tune", "oneactor", "Cy", "--json", "--resume"], environment: env) { _ in }
        try resumed.start(); resumed.wait()
        XCTAssertEqual(resumed.status, .finished)
        for events in [runner.events, resumed.events] {
            let steps = events.compactMap { e -> [String: Float]? in if case .step(_, _, let l, _, _, _) = e { return l }; return nil }
            XCTAssertFalse(steps.isEmpty)
            for l in steps {
                let id = try XCTUnwrap(l["identity"], "every step has the identity term (every timestep by default)")
                XCTAssertEqual(l["loss"]!, l["target"]! + 0.5 * l["aux"]! + 0.2 * l["average"]! + 2 * id, accuracy: 1e-4)
            }
        }
    }
}
