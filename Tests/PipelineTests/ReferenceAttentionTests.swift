import XCTest
@testable import Pipeline

/// Reference-only attention against diffusers' community reference pipeline's attention
/// (tools/fixtures/reference_attention.py) on the ε ("a") and v-prediction ("b", two transformer
/// layers per block) tiny UNets, and its place in the sampling loop.
final class ReferenceAttentionTests: XCTestCase {
    func testParityWithDiffusersReferenceOnlyAttention() throws {
        for name in ["a", "b"] {
            let unet = try DiffusersFolder(path: Fixtures.url("sd/\(name)").path).unet()
            let f = try Fixtures.file("sd/reference-attention-\(name).safetensors")
            let x = try f.tensor("sample"), refX = try f.tensor("ref_sample"), ctx = try f.tensor("context")
            let t = try f.tensor("timestep").toArray()
            let base = GradMode.noGrad { unet(x, timesteps: t, context: ctx).sample }
            assertClose(base, try f.tensor("out.base"), tol: 1e-4, "\(name) without a reference")
            // The bank: the reference rows (one per branch) through the UNet, attn1 inputs recorded.
            let recorder = ReferenceRecorder()
            _ = GradMode.noGrad { unet(refX, timesteps: t, context: ctx, extension: recorder) }
            XCTAssertEqual(recorder.bank.count, name == "a" ? 6 : 14, "\(name): one entry per self-attention layer")
            XCTAssertTrue(recorder.bank.keys.allSatisfy { $0.hasSuffix(".attn1") })
            for (s, sf, key) in [(Float(1), Float(0.5), "out.s1.sf0.5"), (1, 0, "out.s1.sf0"), (0.5, 0.5, "out.s0.5.sf0.5")] {
                let ref = try ReferenceAttention(latents: refX.sliced(0, 0..<1).contiguous(), scale: s, styleFidelity: sf, seed: 0)
                let reader = ref.reader(bank: recorder.bank, order: [.unconditional, .conditional], rows: 1, inner: nil)
                let out = GradMode.noGrad { unet(x, timesteps: t, context: ctx, extension: reader).sample }
                assertClose(out, try f.tensor(key), tol: 1e-4, "\(name) scale \(s) style fidelity \(sf)")
            }
            // The reference moves the output (the parity would hold vacuously otherwise).
            let moved = zip(try f.tensor("out.s1.sf0.5").toArray(), base.toArray()).map { abs($0 - $1) }.max()!
            XCTAssertGreaterThan(moved, 1e-2)
        }
    }

    func testSamplingWithAReference() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = pipe.request(prompt: "a knight"); req.steps = 4; req.seed = 9; req.count = 1
        let plain = try pipe.generate(req)
        var rng = SplitMixRandom(seed: 3)
        let image = Tensor.rand([1, 3, plain.height, plain.width], low: -1, high: 1, using: &rng)
        let latents = ReferenceAttention.latents(of: image, vae: pipe.vae)
        func run(_ s: Float, count: Int = 1) throws -> GenerationResult {
            var r = req; r.count = count
            var cond = try pipe.encodePrompts(r)
            cond.referenceAttention = try ReferenceAttention(latents: latents, scale: s, seed: 5)
            return try pipe.generate(r, conditioning: cond)
        }
        // Scale 0 is the plain sampler, bit for bit (the reference pass is skipped).
        XCTAssertEqual(try run(0).latents.toArray(), plain.latents.toArray())
        let on = try run(1)
        XCTAssertNotEqual(on.latents.toArray(), plain.latents.toArray())
        XCTAssertTrue(on.latents.isAllFinite)
        // Deterministic: the reference's noise has its own seeded stream.
        XCTAssertEqual(try run(1).latents.toArray(), on.latents.toArray())
        // Two images: each branch's bank row is repeated for its images, so the first image is the
        // one-image run's (same seed, same first noise row), up to the batch's rounding.
        let two = try run(1, count: 2)
        assertClose(two.latents.sliced(0, 0..<1).contiguous(), on.latents, tol: 1e-3, "first of two images")
        // Bad values are refused, not run.
        XCTAssertThrowsError(try ReferenceAttention(latents: latents, scale: 1.5, seed: 0))
        XCTAssertThrowsError(try ReferenceAttention(latents: latents, scale: .nan, seed: 0))
        XCTAssertThrowsError(try ReferenceAttention(latents: latents, scale: 1, styleFidelity: -0.1, seed: 0))
        XCTAssertThrowsError(try ReferenceAttention(latents: Tensor.concat([latents, latents], dim: 0), scale: 1, seed: 0))
    }
}
