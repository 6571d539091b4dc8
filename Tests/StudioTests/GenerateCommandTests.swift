// `troupe generate` as a user runs it: the built binary in a subprocess, on the tiny
// diffusers pipelines of the Pipeline fixtures.

import Foundation
import XCTest
import Preview

/// Runs the built `troupe` and collects its output.
struct TroupeRun {
    let status: Int32, stdout: String, stderr: String

    static var binary: String {
        // The test bundle sits in .build/<config>/; the executable beside it.
        let bundle = Bundle(for: GenerateCommandTests.self).bundleURL
        let candidates = [bundle.appendingPathComponent("troupe"), bundle.deletingLastPathComponent().appendingPathComponent("troupe")]
        return (candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]).path
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func fixture(_ p: String) -> String { repo.appendingPathComponent("Tests/PipelineTests/Fixtures/" + p).path }

    @discardableResult
    static func run(_ args: [String], interruptAfter: Double? = nil, cwd: String = NSTemporaryDirectory(),
                    environment: [String: String]? = nil) throws -> TroupeRun {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        if let environment { p.environment = environment }
        p.currentDirectoryURL = URL(fileURLWithPath: cwd)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        if let t = interruptAfter {
            Thread.sleep(forTimeInterval: t)
            p.interrupt()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return TroupeRun(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

final class GenerateCommandTests: XCTestCase {
    let tmp = NSTemporaryDirectory() + "troupe-gen-\(getpid())/"

    override func setUp() { try? FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true) }

    func testGenerateWritesPNGsThatRecreateThemselves() throws {
        let model = TroupeRun.fixture("sd/a")
        let r = try TroupeRun.run(["generate", "--model", model, "--prompt", "a knight, red sword", "--negative", "blurry",
                                   "--steps", "3", "--seed", "9", "--width", "16", "--height", "16", "--count", "2",
                                   "--scheduler", "euler-a", "-o", tmp + "k.png", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(obj["outputs"] as? [String], [tmp + "k.png", tmp + "k-2.png"])
        XCTAssertNotNil(obj["seconds"] as? Double)
        XCTAssertTrue(r.stderr.contains("3/3"), "progress on stderr: \(r.stderr)")
        // --from-png re-creates each image of the batch bit for bit.
        for name in ["k.png", "k-2.png"] {
            let again = try TroupeRun.run(["generate", "--model", model, "--from-png", tmp + name, "-o", tmp + "again.png"])
            XCTAssertEqual(again.status, 0, again.stderr)
            XCTAssertEqual(FileManager.default.contents(atPath: tmp + "again.png"), FileManager.default.contents(atPath: tmp + name), name)
        }
    }

    func testInitLatentsInOutputLatentsOutMatchDiffusers() throws {
        // pipe.ddim.init / pipe.ddim.from_init of tools/fixtures/sd.py: DDIM, 5 steps, CFG 6.
        let refs = TroupeRun.fixture("sd/a.safetensors")
        let initPath = tmp + "init.safetensors"
        try extract(refs, key: "pipe.ddim.init", to: initPath)
        let r = try TroupeRun.run(["generate", "--model", TroupeRun.fixture("sd/a"), "--prompt", "a knight with a red sword",
                                   "--negative", "blurry", "--steps", "5", "--cfg", "6", "--width", "16", "--height", "16",
                                   "--scheduler", "ddim", "--init-latents", initPath, "--output-latents", tmp + "out.safetensors",
                                   "-o", tmp + "i.png"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let ours = try readTensor(tmp + "out.safetensors", "latents"), ref = try readTensor(refs, "pipe.ddim.from_init")
        XCTAssertEqual(ours.count, ref.count)
        let scale = ref.map(abs).max()!
        XCTAssertLessThanOrEqual(zip(ours, ref).map { abs($0 - $1) }.max()!, 2e-3 * scale)
    }

    func testBadInputExitsWithTwo() throws {
        let model = TroupeRun.fixture("sd/a")
        for (args, needle) in [
            (["generate", "--model", model, "--prompt", "x", "--width", "17"], "multiples of 4"),
            (["generate", "--model", model], "--prompt is required"),
            (["generate", "--model", "/nonexistent/model", "--prompt", "x"], "not found"),
            (["generate", "--model", model, "--prompt", "x", "--scheduler", "nope"], "unknown scheduler"),
            (["generate", "--no-such-flag"], "Unknown option"),
            (["generate", "--model", model, "--from-png", "/nonexistent.png"], "nonexistent.png"),
            (["generate", "--model", model, "--prompt", "x", "--steps", "1000"], "allows 1…999"),
        ] {
            let r = try TroupeRun.run(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "\(args): \(r.stderr)")
        }
    }

    func testCtrlCStopsCleanly() throws {
        let r = try TroupeRun.run(["generate", "--model", TroupeRun.fixture("sd/b"), "--prompt", "x", "--steps", "500",
                                   "-o", tmp + "never.png"], interruptAfter: 2.0)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cancelled"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp + "never.png"))
    }

    // Minimal safetensors helpers through the CLI-independent format (F32 only).
    func readTensor(_ path: String, _ key: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = Int(d.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        let e = header[key] as! [String: Any], offs = e["data_offsets"] as! [Int]
        let body = d.subdata(in: (8 + n + offs[0])..<(8 + n + offs[1]))
        return body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    func extract(_ src: String, key: String, to dst: String) throws {
        let d = try Data(contentsOf: URL(fileURLWithPath: src))
        let n = Int(d.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        let e = header[key] as! [String: Any], offs = e["data_offsets"] as! [Int]
        var h = try JSONSerialization.data(withJSONObject: ["latents": ["dtype": "F32", "shape": e["shape"]!, "data_offsets": [0, offs[1] - offs[0]]]])
        while h.count % 8 != 0 { h.append(0x20) }
        var out = Data()
        var len = UInt64(h.count)
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(h)
        out.append(d.subdata(in: (8 + n + offs[0])..<(8 + n + offs[1])))
        try out.write(to: URL(fileURLWithPath: dst))
    }
}

final class Img2ImgCommandTests: XCTestCase {
    func testInitImageRedrawsAPNG() throws {
        let tmp = NSTemporaryDirectory()
        let model = TroupeRun.fixture("sd/a")
        let base = try TroupeRun.run(["generate", "--model", model, "--prompt", "a knight", "--steps", "3", "--width", "16", "--height", "16", "-o", tmp + "base.png"])
        XCTAssertEqual(base.status, 0, base.stderr)
        let r = try TroupeRun.run(["generate", "--model", model, "--prompt", "a wizard", "--steps", "4", "--init-image", tmp + "base.png",
                                   "--strength", "0.5", "--scheduler", "ddim", "-o", tmp + "i2i.png", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp + "i2i.png"))
        XCTAssertTrue(r.stderr.contains("2/2"), "strength 0.5 of 4 steps runs 2: \(r.stderr)")
        let bad = try TroupeRun.run(["generate", "--model", model, "--prompt", "x", "--init-image", tmp + "base.png", "--strength", "1.5"])
        XCTAssertEqual(bad.status, 2, bad.stderr)
    }
}

final class LoRACommandTests: XCTestCase {
    func testLoRAChangesTheImageAndTravelsInThePNG() throws {
        let tmp = NSTemporaryDirectory()
        let model = TroupeRun.fixture("sd/a"), lora = TroupeRun.fixture("sd/lora-kohya.safetensors")
        let common = ["generate", "--model", model, "--prompt", "a knight", "--steps", "3", "--width", "16", "--height", "16", "--seed", "2"]
        XCTAssertEqual(try TroupeRun.run(common + ["-o", tmp + "plain.png"]).status, 0)
        let r = try TroupeRun.run(common + ["--lora", lora + ":3", "-o", tmp + "lora.png"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotEqual(FileManager.default.contents(atPath: tmp + "plain.png"), FileManager.default.contents(atPath: tmp + "lora.png"))
        // A PNG's LoRA paths are never opened on its say-so: the user names the file again.
        let refused = try TroupeRun.run(["generate", "--model", model, "--from-png", tmp + "lora.png", "-o", tmp + "lora2.png"])
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("--lora"), refused.stderr)
        let again = try TroupeRun.run(["generate", "--model", model, "--from-png", tmp + "lora.png", "--lora", lora + ":3", "-o", tmp + "lora2.png"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(FileManager.default.contents(atPath: tmp + "lora2.png"), FileManager.default.contents(atPath: tmp + "lora.png"))
        let bad = try TroupeRun.run(common + ["--lora", TroupeRun.fixture("python_written.safetensors")])
        XCTAssertEqual(bad.status, 2, bad.stderr)
    }
}

final class ShowAndDoctorCommandTests: XCTestCase {
    func testShowRendersAndReportsBadFiles() throws {
        let png = TroupeRun.repo.appendingPathComponent("Tests/PreviewTests/Fixtures/rgba.png").path
        let ok = try TroupeRun.run(["show", "--graphics", "blocks", png])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("▀") && ok.stdout.contains("\u{1B}[38;2;"), ok.stdout)
        let ascii = try TroupeRun.run(["show", png])   // not a terminal → ASCII
        XCTAssertEqual(ascii.status, 0)
        XCTAssertFalse(ascii.stdout.contains("\u{1B}"), "no escapes when stdout is not a terminal")
        let notPNG = NSTemporaryDirectory() + "troupe-notpng.png"
        try Data("not a png".utf8).write(to: URL(fileURLWithPath: notPNG))
        let bad = try TroupeRun.run(["show", "--graphics", "ascii", png, notPNG])
        XCTAssertEqual(bad.status, 2, bad.stderr)
        XCTAssertTrue(bad.stderr.contains(notPNG), bad.stderr)
        XCTAssertTrue(bad.stdout.contains("rgba.png"), "the good file was still shown")
        XCTAssertEqual(try TroupeRun.run(["show", "--graphics", "nope", png]).status, 2)
    }

    func testDoctorReportsEverySection() throws {
        let r = try TroupeRun.run(["doctor", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        for key in ["blas", "threads", "term", "graphics", "graphics_reason", "sixel", "cell_width", "store", "default_model"] {
            XCTAssertNotNil(obj[key], key)
        }
        XCTAssertTrue((obj["blas"] as? String)?.contains("OpenBLAS") ?? false)
    }
}

final class WorldExportCommandTests: XCTestCase {
    func testExportWritesPNGsAndLabels() throws {
        let out = NSTemporaryDirectory() + "troupe-world-\(getpid())"
        let r = try TroupeRun.run(["world", "export", "--count", "12", "--out", out, "--seed", "4"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = try String(contentsOfFile: out + "/labels.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 12)
        let first = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        for k in ["file", "caption", "class", "skin", "hair_color", "hair_style", "eye_color", "outfit_color", "outfit_pattern",
                  "accessory", "pose", "expression", "background", "view", "identity_id"] {
            XCTAssertNotNil(first[k], k)
        }
        let img = try PNGCodec.read(path: out + "/" + (first["file"] as! String))
        XCTAssertEqual(img.width, 64); XCTAssertEqual(img.height, 64)
        // Same seed, same files.
        let again = NSTemporaryDirectory() + "troupe-world2-\(getpid())"
        XCTAssertEqual(try TroupeRun.run(["world", "export", "--count", "12", "--out", again, "--seed", "4"]).status, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: out + "/000005.png"), FileManager.default.contents(atPath: again + "/000005.png"))
        XCTAssertEqual(try TroupeRun.run(["world", "export", "--count", "0", "--out", out]).status, 2)
    }
}
