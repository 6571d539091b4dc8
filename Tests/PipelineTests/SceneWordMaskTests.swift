import XCTest
@testable import Pipeline

/// Cross-attention context masking against diffusers' `encoder_attention_mask`
/// (tools/fixtures/context_mask.py), the kernel's mask against attention over the kept keys
/// alone, and scene-word masking's token positions and place in the sampling loop.
final class SceneWordMaskTests: XCTestCase {
    func testParityWithDiffusersEncoderAttentionMask() throws {
        for name in ["a", "b"] {
            let unet = try DiffusersFolder(path: Fixtures.url("sd/\(name)").path).unet()
            let f = try Fixtures.file("sd/context-mask-\(name).safetensors")
            let x = try f.tensor("sample"), ctx = try f.tensor("context"), t = try f.tensor("timestep").toArray()
            let keep = try f.tensor("mask").toArray()
            let mask = AttentionKeyMask(masked: keep.map { $0 == 0 }, keys: 77)
            let plain = GradMode.noGrad { unet(x, timesteps: t, context: ctx).sample }
            assertClose(plain, try f.tensor("out.plain"), tol: 1e-4, "\(name) unmasked")
            let masked = GradMode.noGrad { unet(x, timesteps: t, context: ctx, contextMask: mask).sample }
            assertClose(masked, try f.tensor("out.masked"), tol: 1e-4, "\(name) masked")
            // Row 0 keeps every token: the plain output. Rows 1 and 2 move (or the parity is vacuous).
            assertClose(masked.sliced(0, 0..<1).contiguous(), plain.sliced(0, 0..<1).contiguous(), tol: 1e-5, "\(name) row 0")
            for row in 1...2 {
                let moved = zip(masked.sliced(0, row..<(row + 1)).contiguous().toArray(), plain.sliced(0, row..<(row + 1)).contiguous().toArray()).map { abs($0 - $1) }.max()!
                XCTAssertGreaterThan(moved, 1e-3, "\(name) row \(row)")
            }
        }
    }

    /// Masking keys equals attending over the other keys alone, forward and backward (the
    /// masked keys get no gradient), chunked or not.
    func testMaskedAttentionIsAttentionOverTheKeptKeys() {
        var rng = SplitMixRandom(seed: 7)
        let (b, l, s, c, heads) = (2, 9, 12, 12, 3)
        let skipped: [[Int]] = [[1, 4, 5], [0, 11]]
        for budget in [AttentionShape.defaultScoreBudget, 24] {
            AttentionShape.scoreBudget = budget
            defer { AttentionShape.scoreBudget = AttentionShape.defaultScoreBudget }
            let q = Tensor.randn([b, l, c], using: &rng), k = Tensor.randn([b, s, c], using: &rng), v = Tensor.randn([b, s, c], using: &rng)
            let weights = Tensor.randn([b, l, c], using: &rng)
            for t in [q, k, v] { t.requiresGrad = true }
            let masked = (0..<b).flatMap { r in (0..<s).map { skipped[r].contains($0) } }
            let out = Tensor.attention(q: q, k: k, v: v, heads: heads, keyMask: AttentionKeyMask(masked: masked, keys: s))
            (out * weights).sum().backward()
            let (gq, gk, gv) = (q.grad!, k.grad!, v.grad!)
            for r in 0..<b {
                let kept = (0..<s).filter { !skipped[r].contains($0) }
                let qr = q.detached().sliced(0, r..<(r + 1)).contiguous()
                let kr = k.detached().sliced(0, r..<(r + 1)).contiguous().permuted([1, 0, 2]).contiguous().selectingRows(kept).permuted([1, 0, 2]).contiguous()
                let vr = v.detached().sliced(0, r..<(r + 1)).contiguous().permuted([1, 0, 2]).contiguous().selectingRows(kept).permuted([1, 0, 2]).contiguous()
                for t in [qr, kr, vr] { t.requiresGrad = true }
                let ref = Tensor.attention(q: qr, k: kr, v: vr, heads: heads)
                (ref * weights.sliced(0, r..<(r + 1)).contiguous()).sum().backward()
                assertClose(out.sliced(0, r..<(r + 1)).contiguous(), ref, tol: 1e-5, "row \(r) output, budget \(budget)")
                assertClose(gq.sliced(0, r..<(r + 1)).contiguous(), qr.grad!, tol: 1e-4, "row \(r) dq")
                let gkr = gk.sliced(0, r..<(r + 1)).contiguous().permuted([1, 0, 2]).contiguous()
                let gvr = gv.sliced(0, r..<(r + 1)).contiguous().permuted([1, 0, 2]).contiguous()
                assertClose(gkr.selectingRows(kept).permuted([1, 0, 2]).contiguous(), kr.grad!, tol: 1e-4, "row \(r) dk")
                assertClose(gvr.selectingRows(kept).permuted([1, 0, 2]).contiguous(), vr.grad!, tol: 1e-4, "row \(r) dv")
                // (The kernel's exp of −∞ is its smallest normal float, not 0, as for the causal mask.)
                XCTAssertLessThan(gkr.selectingRows(skipped[r]).toArray().map(abs).max()!, 1e-30, "row \(r): masked keys get no gradient")
                XCTAssertLessThan(gvr.selectingRows(skipped[r]).toArray().map(abs).max()!, 1e-30)
            }
        }
    }

    func testScenePositionsAreTheWordsOutsideTheCharacterPrompt() throws {
        let tok = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path)).tokenizer
        let character = "a bald wizard with a necklace"
        let n = tok.tokenIDs(character).count
        // Character first: the words after it.
        let prompt = character + ", walking under a blue sky"
        let total = tok.tokenIDs(prompt).count
        XCTAssertEqual(SceneWordMask.positions(prompt: prompt, characterPrompt: character, tokenizer: tok), Array((n + 1)...total))
        // Character inside: the words before and after it; the start token never.
        let inside = "side view of " + character + " in a desert"
        let pre = tok.tokenIDs("side view of").count, all = tok.tokenIDs(inside).count
        XCTAssertEqual(SceneWordMask.positions(prompt: inside, characterPrompt: character, tokenizer: tok),
                       Array(1...pre) + Array((pre + n + 1)...all))
        // The character's prompt alone masks nothing; a prompt without it cannot be split.
        XCTAssertEqual(SceneWordMask.positions(prompt: character, characterPrompt: character, tokenizer: tok), [])
        XCTAssertNil(SceneWordMask.positions(prompt: "a wizard walking under a blue sky", characterPrompt: character, tokenizer: tok))
        XCTAssertNil(SceneWordMask.positions(prompt: "anything", characterPrompt: "", tokenizer: tok))
        // Case and spacing are the tokenizer's business, not the match's.
        XCTAssertEqual(SceneWordMask.positions(prompt: "A Bald  Wizard with a necklace, at night", characterPrompt: character, tokenizer: tok),
                       Array((n + 1)...(n + 3)))
    }

    func testMaskingLeavesTheUnconditionalBranchAndLaysOutRowsByBranch() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = pipe.request(prompt: "a knight, under a blue sky"); req.count = 2
        let cond = try pipe.encodePrompts(req).maskingSceneWords([3, 4, 5])
        XCTAssertEqual(cond.branches[.unconditional]!.maskedPositions, [])
        XCTAssertEqual(cond.branches[.conditional]!.maskedPositions, [3, 4, 5])
        XCTAssertNil(try pipe.encodePrompts(req).contextMask(for: [.unconditional, .conditional], rows: 2))
        let mask = try XCTUnwrap(try cond.contextMask(for: [.unconditional, .conditional], rows: 2))
        XCTAssertEqual(mask.rows, 4)
        for r in 0..<4 {
            let row = Array(mask.masked[(r * 77)..<((r + 1) * 77)])
            XCTAssertEqual(row.indices.filter { row[$0] }, r < 2 ? [] : [3, 4, 5], "row \(r)")
        }
        XCTAssertThrowsError(try pipe.encodePrompts(req).maskingSceneWords([0]).contextMask(for: [.conditional], rows: 1), "the start token stays")
        XCTAssertThrowsError(try pipe.encodePrompts(req).maskingSceneWords([77]).contextMask(for: [.conditional], rows: 1))
    }

    func testSamplingWithMaskedSceneWords() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = pipe.request(prompt: "a knight, walking under a blue sky, smiling"); req.steps = 4; req.seed = 5; req.count = 1
        let plain = try pipe.generate(req)
        // Nothing masked is the plain sampler, bit for bit.
        let none = try pipe.generate(req, conditioning: try pipe.encodePrompts(req).maskingSceneWords([]))
        XCTAssertEqual(none.latents.toArray(), plain.latents.toArray())
        let positions = try XCTUnwrap(SceneWordMask.positions(prompt: req.prompt, characterPrompt: "a knight", tokenizer: pipe.tokenizer))
        let masked = try pipe.generate(req, conditioning: try pipe.encodePrompts(req).maskingSceneWords(positions))
        XCTAssertNotEqual(masked.latents.toArray(), plain.latents.toArray())
        XCTAssertTrue(masked.latents.isAllFinite)
        // Masking a word equals not having its token among the keys: the same prompt with the
        // scene words dropped from the context rows (start, character, end and padding only).
        let both = try pipe.encodePrompts(req)
        let keep = (0..<77).filter { !positions.contains($0) }
        func dropped(_ t: TextConditioning) -> TextConditioning {
            TextConditioning(context: t.context.permuted([1, 0, 2]).contiguous().selectingRows(keep).permuted([1, 0, 2]).contiguous())
        }
        let short = Conditioning(branches: [.unconditional: dropped(both.branches[.unconditional]!), .conditional: dropped(both.branches[.conditional]!)])
        // The unconditional branch keeps all its tokens in the masked run; compare the
        // conditional branch alone (guidance 1: the prompt's prediction only).
        var cond1 = req; cond1.guidanceScale = 1
        let viaMask = try pipe.generate(cond1, conditioning: both.maskingSceneWords(positions))
        let viaDrop = try pipe.generate(cond1, conditioning: short)
        assertClose(viaMask.latents, viaDrop.latents, tol: 1e-4, "masked tokens = dropped tokens")
    }
}
