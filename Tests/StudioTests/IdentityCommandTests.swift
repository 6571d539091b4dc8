// The identity adapter through the CLI on the micro model: `identity train` (stop with a
// checkpoint, resume, the same adapter as an uninterrupted run), `generate --identity-ref`
// recording its scale and reference, a character's target as the default reference, and bad
// input as clear errors.

import XCTest
import Pipeline
import Preview
@testable import Studio

final class IdentityCommandTests: XCTestCase {
    var root = ""
    override func setUp() {
        root = NSTemporaryDirectory() + "troupe-id-cli-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }
    func troupe(_ a: [String]) throws -> TroupeRun { try TroupeRun.run(a, environment: env) }

    func testTrainResumeGenerateAndBadInput() throws {
        let model = JobTests.microModel
        let train = ["identity", "train", "--model", model, "--steps", "4", "--batch", "2", "--checkpoint-every", "2"]
        let whole = try troupe(train + ["--out", root + "/whole"])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let piece = try troupe(train + ["--out", root + "/pieces", "--stop-after", "2"])
        XCTAssertEqual(piece.status, 0, piece.stderr)
        XCTAssertTrue(piece.stderr.contains("--resume"), piece.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/pieces/adapter.safetensors"))
        let again = try troupe(train + ["--out", root + "/pieces"])
        XCTAssertEqual(again.status, 2); XCTAssertTrue(again.stderr.contains("already holds a run"), again.stderr)
        let rest = try troupe(["identity", "train", "--out", root + "/pieces", "--resume"])
        XCTAssertEqual(rest.status, 0, rest.stderr)
        let a = try SafetensorsFile(path: root + "/whole/adapter.safetensors"), b = try SafetensorsFile(path: root + "/pieces/adapter.safetensors")
        XCTAssertEqual(a.metadata["troupe"], "identity-adapter")
        for k in a.entries.keys.sorted() { XCTAssertEqual(try a.tensor(k).toArray(), try b.tensor(k).toArray(), "resumed run differs at \(k)") }

        // generate --identity-ref: the PNG records the scale and the reference's name.
        let adapter = root + "/whole/adapter.safetensors"
        let ref = root + "/ref.png"
        try PNGCodec.write(RGBImage(width: 64, height: 64, pixels: (0..<(64 * 64 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) }), to: ref)
        let out = root + "/id.png"
        let g = try troupe(["generate", "--model", model, "--prompt", "a knight", "--steps", "3", "--identity-ref", ref, "--identity-scale", "0.7",
                            "--identity-adapter", adapter, "-o", out])
        XCTAssertEqual(g.status, 0, g.stderr)
        let params = GenerationParameters(text: try XCTUnwrap(PNGCodec.readText(path: out).first { $0.0 == GenerationParameters.chunkKey }?.1))
        XCTAssertEqual(params.extra.first { $0.0 == "Identity scale" }?.1, "0.7")
        XCTAssertEqual(params.extra.first { $0.0 == "Identity reference" }?.1, "ref.png")
        let plain = try troupe(["generate", "--model", model, "--prompt", "a knight", "--steps", "3", "-o", root + "/plain.png"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertNotEqual(try PNGCodec.read(path: out).pixels, try PNGCodec.read(path: root + "/plain.png").pixels, "the identity changes the image")
        // Re-made from the PNG: the reference file must be named again; with it, the same pixels.
        let refused = try troupe(["generate", "--model", model, "--from-png", out, "--identity-adapter", adapter, "-o", root + "/re.png"])
        XCTAssertEqual(refused.status, 2); XCTAssertTrue(refused.stderr.contains("--identity-ref"), refused.stderr)
        let remade = try troupe(["generate", "--model", model, "--from-png", out, "--identity-ref", ref, "--identity-adapter", adapter, "-o", root + "/re.png"])
        XCTAssertEqual(remade.status, 0, remade.stderr)
        XCTAssertEqual(try PNGCodec.read(path: root + "/re.png").pixels, try PNGCodec.read(path: out).pixels)

        // A character's target is its reference by default.
        let store = CharacterStore(root: root)
        _ = try store.create("Ada", prompt: "a knight waving", baseWord: "knight", seed: 3, model: model)
        let none = try troupe(["generate", "--character", "Ada", "--identity-scale", "1", "--identity-adapter", adapter, "--steps", "2", "-o", root + "/c.png"])
        XCTAssertEqual(none.status, 2); XCTAssertTrue(none.stderr.contains("no target image"), none.stderr)
        _ = try store.add("Ada", images: [ref], accepted: true)
        let c = try troupe(["generate", "--character", "Ada", "--identity-scale", "1", "--identity-adapter", adapter, "--steps", "2", "-o", root + "/c.png"])
        XCTAssertEqual(c.status, 0, c.stderr)
        let cp = GenerationParameters(text: try XCTUnwrap(PNGCodec.readText(path: root + "/c.png").first { $0.0 == GenerationParameters.chunkKey }?.1))
        XCTAssertEqual(cp.extra.first { $0.0 == "Identity reference" }?.1, "character target")

        // Bad input: not an image, the wrong size, an adapter for another model, no reference.
        FileManager.default.createFile(atPath: root + "/notes.png", contents: Data("hello".utf8))
        let bad = try troupe(["generate", "--model", model, "--prompt", "a knight", "--identity-ref", root + "/notes.png", "--identity-adapter", adapter, "-o", root + "/b.png"])
        XCTAssertEqual(bad.status, 2); XCTAssertTrue(bad.stderr.contains("identity reference"), bad.stderr)
        try PNGCodec.write(RGBImage(width: 32, height: 32, pixels: [UInt8](repeating: 9, count: 32 * 32 * 3)), to: root + "/small.png")
        let small = try troupe(["generate", "--model", model, "--prompt", "a knight", "--identity-ref", root + "/small.png", "--identity-adapter", adapter, "-o", root + "/b.png"])
        XCTAssertEqual(small.status, 2); XCTAssertTrue(small.stderr.contains("64×64"), small.stderr)
        let other = try troupe(["generate", "--prompt", "a knight", "--identity-ref", ref, "--identity-adapter", adapter, "--steps", "2", "-o", root + "/b.png"])
        XCTAssertEqual(other.status, 2); XCTAssertTrue(other.stderr.contains("identity adapter for the model"), other.stderr)
        let noRef = try troupe(["generate", "--model", model, "--prompt", "a knight", "--identity-scale", "1", "--identity-adapter", adapter, "-o", root + "/b.png"])
        XCTAssertEqual(noRef.status, 2); XCTAssertTrue(noRef.stderr.contains("needs a reference"), noRef.stderr)
        for f in ["b.png"] { XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/" + f)) }

        // --spatial with the context term: the file says so, generate reads the spatial tokens,
        // and a resumed run cannot change its architecture.
        let sp = try troupe(["identity", "train", "--model", model, "--steps", "2", "--batch", "2", "--spatial", "--context-weight", "0.1", "--out", root + "/spatial"])
        XCTAssertEqual(sp.status, 0, sp.stderr)
        let meta = try SafetensorsFile(path: root + "/spatial/adapter.safetensors").metadata
        XCTAssertEqual(meta["spatial"], "true"); XCTAssertEqual(meta["context_weight"], "0.1"); XCTAssertEqual(meta["spatial_positions"], "64")
        let gs = try troupe(["generate", "--model", model, "--prompt", "a knight", "--steps", "3", "--identity-ref", ref,
                             "--identity-adapter", root + "/spatial/adapter.safetensors", "-o", root + "/sp.png"])
        XCTAssertEqual(gs.status, 0, gs.stderr)
        let respatial = try troupe(["identity", "train", "--out", root + "/spatial", "--resume", "--spatial"])
        XCTAssertEqual(respatial.status, 2); XCTAssertTrue(respatial.stderr.contains("spatial are fixed"), respatial.stderr)
    }

    /// A finished constant-rate run, resumed with more steps and --decay-steps, cools its
    /// learning rate to 0 (1 − sqrt) over those steps; a cooldown longer than the run is refused.
    /// `identity show`: the shipped adapter is troupe-mini's and not the micro model's; images
    /// are compared by the IdentityEncoder's cosine (symmetric, 1 for an image with itself and
    /// for two copies of it); what it cannot read is a clear error.
    func testShowDescribesTheFilesAndComparesImages() throws {
        let plain = try troupe(["identity", "show"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stdout.contains("this is troupe-mini"), plain.stdout)
        XCTAssertTrue(plain.stdout.contains("held-out top-1 identity retrieval"), plain.stdout)
        for seed in ["1", "2"] {
            XCTAssertEqual(try troupe(["generate", "--prompt", "a knight waving", "--seed", seed, "--steps", "4", "-o", root + "/\(seed).png"]).status, 0)
        }
        try FileManager.default.copyItem(atPath: root + "/1.png", toPath: root + "/copy.png")
        let compared = try troupe(["identity", "show", "--json", root + "/1.png", root + "/2.png", root + "/copy.png"])
        XCTAssertEqual(compared.status, 0, compared.stderr)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(compared.stdout.utf8)) as? [String: Any])
        let s = try XCTUnwrap(obj["similarity"] as? [[Double]])
        XCTAssertEqual(s.count, 3)
        for i in 0..<3 {
            XCTAssertEqual(s[i][i], 1, accuracy: 1e-4)
            for j in 0..<3 { XCTAssertEqual(s[i][j], s[j][i], accuracy: 1e-6); XCTAssertLessThanOrEqual(abs(s[i][j]), 1 + 1e-4) }
        }
        XCTAssertEqual(s[0][2], 1, accuracy: 1e-4, "a copy is the same identity")
        XCTAssertLessThan(s[0][1], 0.9999, "two seeds are two images")
        XCTAssertEqual((obj["adapter"] as? [String: Any])?["fits_model"] as? Bool, true)
        let micro = try troupe(["identity", "show", "--model", JobTests.microModel, "--json"])
        XCTAssertEqual(micro.status, 0, micro.stderr)
        let m = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(micro.stdout.utf8)) as? [String: Any])
        XCTAssertEqual((m["adapter"] as? [String: Any])?["fits_model"] as? Bool, false, "troupe-mini's adapter is not the micro model's")

        try "not an image".write(toFile: root + "/x.png", atomically: true, encoding: .utf8)
        let small = root + "/small.png"
        try PNGCodec.write(RGBImage(width: 32, height: 32), to: small)
        for (args, message) in [([root + "/x.png"], "cannot read PNG"), ([small], "the IdentityEncoder reads 64×64"),
                                (["--adapter", TroupeRun.repo.appendingPathComponent("models/identity/encoder.safetensors").path], "not an identity-adapter file")] {
            let r = try troupe(["identity", "show"] + args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }

    func testResumeCoolsTheLearningRate() throws {
        let model = JobTests.microModel, out = root + "/run"
        let first = try troupe(["identity", "train", "--model", model, "--steps", "2", "--batch", "2", "--judge-weight", "0",
                                "--learning-rate", "1e-3", "--out", out])
        XCTAssertEqual(first.status, 0, first.stderr)
        let tooLong = try troupe(["identity", "train", "--out", out, "--resume", "--steps", "6", "--decay-steps", "9"])
        XCTAssertEqual(tooLong.status, 2); XCTAssertTrue(tooLong.stderr.contains("--decay-steps"), tooLong.stderr)
        let noJudgeSteps = try troupe(["identity", "train", "--out", out, "--resume", "--judge-max-timestep", "0"])
        XCTAssertEqual(noJudgeSteps.status, 2); XCTAssertTrue(noJudgeSteps.stderr.contains("--judge-max-timestep"), noJudgeSteps.stderr)
        let cooled = try troupe(["identity", "train", "--out", out, "--resume", "--steps", "6", "--decay-steps", "4", "--json"])
        XCTAssertEqual(cooled.status, 0, cooled.stderr)
        var rates: [Int: Float] = [:]
        for line in try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n") {
            guard case let .step(step, _, _, lr, _, _) = try JSONDecoder().decode(JobEvent.self, from: Data(line.utf8)) else { continue }
            rates[step] = lr
        }
        // Metrics count steps from 1: step s was optimiser step s − 1; the cooldown starts at 2.
        XCTAssertEqual(rates.keys.sorted(), [1, 2, 3, 4, 5, 6])
        for (s, expected) in [(3, 1.0), (4, 1 - 0.25.squareRoot()), (5, 1 - 0.5.squareRoot()), (6, 1 - 0.75.squareRoot())] {
            XCTAssertEqual(Double(rates[s]!), 1e-3 * expected, accuracy: 1e-9, "step \(s)")
        }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(cooled.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["step"] as? Int, 6); XCTAssertEqual(json["steps_this_run"] as? Int, 4)
        XCTAssertNotNil(json["adapter"]); XCTAssertNotNil(json["last_loss"])
        let meta = try SafetensorsFile(path: out + "/adapter.safetensors").metadata
        XCTAssertEqual(meta["decay_steps"], "4"); XCTAssertEqual(meta["steps"], "6")
    }
}
