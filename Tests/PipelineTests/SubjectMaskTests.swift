// The subject mask against PyTorch (tools/fixtures/subject_mask.py: diffusers' DiffEdit mask and
// cluster guidance restricted to it, on fixture tensors), the subject-free prompt's tokens, and
// end to end on the tiny random pipeline: with v = 0 masked cluster guidance is the base model
// (up to the rounding of a larger UNet batch), with v > 0 it samples something else than unmasked cluster guidance.

import XCTest
@testable import Pipeline

final class SubjectMaskTests: XCTestCase {
    func testMaskAndMaskedGuidanceMatchPyTorch() throws {
        let f = try Fixtures.file("subject_mask.safetensors")
        let plain = try f.tensor("mask.plain"), subjectless = try f.tensor("mask.subjectless")
        let mask = SubjectMask.diffEdit(prompt: plain, subjectless: subjectless)
        XCTAssertEqual(mask.shape, [3, 1, 8, 8])
        XCTAssertEqual(mask.toArray(), try f.tensor("mask.value").toArray())
        // Both planted subjects are found (14 cells each) and the image where the word changed
        // nothing has an empty mask.
        let cells = mask.toArray()
        XCTAssertEqual([0, 1, 2].map { i in cells[(i * 64)..<((i + 1) * 64)].reduce(0, +) }, [14, 14, 0])

        // Boxes: image 0's 4×4 square grows to 6×6, image 1's 7×2 strip (rows 1–7, columns 1–2)
        // to rows 0–7 × columns 0–3 (clipped at the top), the empty mask stays empty.
        let boxed = SubjectMask.boxed(mask)
        XCTAssertEqual(boxed.toArray(), try f.tensor("box.value").toArray())
        let b = boxed.toArray()
        XCTAssertEqual([0, 1, 2].map { i in b[(i * 64)..<((i + 1) * 64)].reduce(0, +) }, [36, 32, 0])

        let p = try f.tensor("guidance.params").toArray()
        let g = ClusterGuidance(eta1: p[0], eta2: p[1], steps: 0..<10, outsideScale: p[0], subjectMask: true)
        XCTAssertEqual(g.branches(atStep: 2, of: 20), [.unconditional, .conditional, .auxiliary, .plain, .subjectless])
        XCTAssertEqual(g.branches(atStep: 12, of: 20), [.unconditional, .plain], "outside its steps: plain guidance, no mask")
        let outputs: [GuidanceBranch: Tensor] = [.unconditional: try f.tensor("guidance.u"), .conditional: try f.tensor("guidance.t"),
                                                 .auxiliary: try f.tensor("guidance.a"), .plain: plain, .subjectless: subjectless]
        let got = g.combine(outputs, atStep: 2, of: 20).toArray(), want = try f.tensor("guidance.masked").toArray()
        XCTAssertEqual(got.count, want.count)
        let err = zip(got, want).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(err, 1e-4, "masked cluster guidance: max abs error \(err)")
    }

    func testPromptWithoutItsSubjectWord() throws {
        let tok = try CLIPTokenizer(directory: Fixtures.url("sd/a/tokenizer").path)
        let prompt = "a knight with red hair, waving"
        let full = tok.encode(prompt), without = try tok.encode(prompt, removing: "knight")
        XCTAssertEqual(without.count, tok.maxLength)
        let drop = try tok.positions(of: "knight", in: prompt)
        XCTAssertEqual(without, full.enumerated().filter { !drop.contains($0.offset) }.map(\.element) + Array(repeating: tok.padID, count: drop.count))
        XCTAssertEqual(without, tok.encode("a with red hair, waving"))
        XCTAssertThrowsError(try tok.encode("a wizard", removing: "knight"))
        // The character's whole prompt comes out where the prompt contains it (any case), else
        // the base word alone.
        let adapter = OneActorAdapter(targetOffset: Tensor(zeros: [1, 8]), auxiliaryOffset: Tensor(zeros: [1, 8]), baseWord: "knight", site: .output)
        XCTAssertEqual(try adapter.subjectlessIDs(prompt: prompt, characterPrompt: "A knight with red hair", tokenizer: tok), tok.encode(", waving"))
        XCTAssertEqual(try adapter.subjectlessIDs(prompt: prompt, characterPrompt: "a knight with blue hair", tokenizer: tok), without)
        XCTAssertEqual(try adapter.subjectlessIDs(prompt: prompt, characterPrompt: "", tokenizer: tok), without)
    }

    func testMaskedClusterGuidanceEndToEnd() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var r = GenerationRequest(prompt: "a knight with a red sword")
        r.steps = 4; r.guidanceScale = 5; r.width = 16; r.height = 16; r.seed = 21
        let c = try OneActorCluster.build(pipeline: pipe, request: r, baseWord: "knight", targetImage: nil, auxiliaries: 2, model: pipe.fingerprint)
        var cfg = OneActorConfig(); cfg.steps = 3
        let dir = NSTemporaryDirectory() + "troupe-subject-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let t = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: dir)
        try TrainingLoop.run(t) { _ in true }
        let adapter = OneActorAdapter(projector: t.projector, cluster: c)
        var q = GenerationRequest(prompt: "a knight waving")
        q.steps = 4; q.guidanceScale = 5; q.width = 16; q.height = 16; q.seed = 3; q.count = 2
        let plain = try pipe.generate(q).latents.toArray()
        let masked = ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<4, outsideScale: 5, subjectMask: true)
        let zero = try adapter.conditioning(for: q, pipeline: pipe, v: 0, subjectlessOf: c.prompt)
        XCTAssertNotNil(zero.branches[.subjectless])
        // Equal up to rounding: the UNet batch holds four branches instead of two.
        let same = try pipe.generate(q, conditioning: zero, guidance: masked).latents.toArray()
        XCTAssertLessThan(zip(same, plain).map { abs($0 - $1) }.max() ?? 1, 1e-3)
        let tuned = try adapter.conditioning(for: q, pipeline: pipe, v: 1, subjectlessOf: c.prompt)
        let unmasked = ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<4, outsideScale: 5)
        let a = try pipe.generate(q, conditioning: tuned, guidance: masked).latents.toArray()
        let b = try pipe.generate(q, conditioning: tuned, guidance: unmasked).latents.toArray()
        func distance(_ x: [Float], _ y: [Float]) -> Float { zip(x, y).map { abs($0 - $1) }.max() ?? 0 }
        XCTAssertGreaterThan(distance(a, plain), 1e-2)
        XCTAssertGreaterThan(distance(a, b), 1e-2)
        // Without the subject-free branch the masked guidance is a clear error, not a crash.
        let bare = try adapter.conditioning(for: q, pipeline: pipe, v: 1)
        XCTAssertThrowsError(try pipe.generate(q, conditioning: bare, guidance: masked))
    }
}
