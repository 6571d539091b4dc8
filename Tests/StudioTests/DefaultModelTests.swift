// The embedded model as a fresh clone has it: models/troupe-mini loads without --model,
// generates 64×64 images, and stays within the size the project ships (≤ 40 MB, fp16).

import XCTest
import Pipeline
import Preview

final class DefaultModelTests: XCTestCase {
    static let folder = TroupeRun.repo.appendingPathComponent("models/troupe-mini").path

    func testShippedFolderIsFP16AndSmall() throws {
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: Self.folder)?.allObjects as? [String])
        var bytes = 0
        for f in files {
            let attrs = try FileManager.default.attributesOfItem(atPath: Self.folder + "/" + f)
            if attrs[.type] as? FileAttributeType == .typeRegular { bytes += (attrs[.size] as? Int) ?? 0 }
            if f.hasSuffix(".safetensors") {
                let st = try SafetensorsFile(path: Self.folder + "/" + f)
                for n in st.names { XCTAssertEqual(try st.entry(n).dtype, .f16, "\(f): \(n)") }
            }
        }
        XCTAssertLessThanOrEqual(bytes, 40 * 1024 * 1024)
        for c in ["model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
                  "text_encoder/config.json", "unet/config.json", "vae/config.json", "README.md"] {
            XCTAssertTrue(files.contains(c), "missing \(c)")
        }
    }

    func testGenerateWithoutModelUsesTroupeMini() throws {
        let out = NSTemporaryDirectory() + "troupe-default-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try TroupeRun.run(["generate", "--prompt", "a knight waving, smiling, in a forest, front view", "--steps", "3", "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let img = try PNGCodec.read(path: out)
        XCTAssertEqual([img.width, img.height], [64, 64])
        let params = try XCTUnwrap(PNGCodec.readText(path: out).first { $0.0 == "parameters" }?.1)
        XCTAssertTrue(params.contains("Model: troupe-mini"), params)
    }
}
