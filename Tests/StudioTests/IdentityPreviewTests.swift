// The Generate screen's identity slider renders what `troupe generate --character NAME
// --identity-scale X` makes: the same pipeline, the character's target as the reference, the
// same pixels and the same recorded fields (needs the shipped identity adapter).

import XCTest
import Pipeline
import Preview
@testable import Studio

final class IdentityPreviewTests: XCTestCase {
    func testSliderPreviewEqualsTheCommand() throws {
        let root = NSTemporaryDirectory() + "troupe-id-preview-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let env = ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 }
        let store = CharacterStore(root: root)
        _ = try store.create("Ada", prompt: "a knight with red hair", baseWord: "knight", seed: 3, model: ModelLocator.defaultModelName)
        let target = root + "/target.png"
        let made = try TroupeRun.run(["generate", "--prompt", "a knight with red hair", "--seed", "3", "--steps", "6", "-o", target], environment: env)
        XCTAssertEqual(made.status, 0, made.stderr)
        _ = try store.add("Ada", images: [target], accepted: true)

        let done = expectation(description: "preview")
        var output: PreviewRenderer.Output?
        let renderer = PreviewRenderer(store: store) { e in
            if case .finished(let o) = e { output = o; done.fulfill() }
            if case .failed(_, let m) = e { XCTFail(m); done.fulfill() }
        }
        let record = try store.load("Ada")
        var s = GenerateSettings(character: record, defaults: try renderer.defaults(model: nil), characterLoRA: false)
        s.prompt = "a knight waving"; s.steps = 5; s.seed = 8; s.identityScale = 0.8
        renderer.submit(s, debounce: 0)
        wait(for: [done], timeout: 120)
        let preview = try XCTUnwrap(output)
        func field(_ p: GenerationParameters, _ k: String) -> String? { p.extra.first { $0.0 == k }?.1 }
        XCTAssertEqual(field(preview.parameters, "Identity scale"), "0.8")
        XCTAssertEqual(field(preview.parameters, "Identity reference"), "character target")

        let out = root + "/cli.png"
        let cli = try TroupeRun.run(["generate", "--character", "Ada", "--prompt", "a knight waving", "--steps", "5", "--seed", "8",
                                     "--cfg", GenerationPNG.text(s.cfg), "--identity-scale", "0.8", "-o", out], environment: env)
        XCTAssertEqual(cli.status, 0, cli.stderr)
        XCTAssertEqual(try PNGCodec.read(path: out).pixels, preview.image.pixels, "the slider renders what the command makes")
        let p = GenerationParameters(text: try XCTUnwrap(PNGCodec.readText(path: out).first { $0.0 == GenerationParameters.chunkKey }?.1))
        XCTAssertEqual(field(p, "Identity scale"), "0.8")
        // And the identity moves the image: scale 0 is the plain prompt.
        s.identityScale = 0
        let plainDone = expectation(description: "plain")
        var plain: PreviewRenderer.Output?
        let r2 = PreviewRenderer(store: store) { e in if case .finished(let o) = e { plain = o; plainDone.fulfill() } }
        r2.submit(s, debounce: 0)
        wait(for: [plainDone], timeout: 120)
        XCTAssertNotEqual(try XCTUnwrap(plain).image.pixels, preview.image.pixels)
    }
}
