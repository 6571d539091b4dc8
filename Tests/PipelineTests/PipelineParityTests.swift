// The pipeline's own behaviour on the tiny fixtures: the folder's scheduler by default, bad
// sizes, cancelling. Final latents against diffusers, for every scheduler and both prediction
// types, are PipelineMatrixTests'; img2img's are below.

import XCTest
@testable import Pipeline

final class PipelineParityTests: XCTestCase {
    func testDefaultSchedulerIsTheFolders() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = GenerationRequest(prompt: "x"); req.steps = 2
        XCTAssertEqual(try pipe.scheduler(for: req).1, "pndm")
    }

    func testBadSizeIsAClearError() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = GenerationRequest(prompt: "x"); req.width = 17; req.height = 16
        XCTAssertThrowsError(try pipe.generate(req)) { e in
            XCTAssertEqual(e as? GenerationError, .badSize(width: 17, height: 16, multiple: 4))
        }
    }

    func testCancelStopsAtAStepBoundary() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var req = GenerationRequest(prompt: "x"); req.width = 16; req.height = 16; req.steps = 5
        var seen = 0
        XCTAssertThrowsError(try pipe.generate(req) { step, _ in seen = step; return step < 2 }) { e in
            XCTAssertEqual(e as? GenerationError, .cancelled)
        }
        XCTAssertEqual(seen, 2)
    }
}

final class Img2ImgParityTests: XCTestCase {
    /// StableDiffusionImg2ImgPipeline, strength 0.6, 5 steps, seed 77 (posterior sample and
    /// noise from one generator), four schedulers.
    func testImg2ImgMatchesDiffusers() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let r = try Fixtures.file("sd/img2img.safetensors")
        for (name, kind) in [("ddim", SchedulerKind.ddim), ("euler_a", .eulerAncestral), ("dpmpp_2m", .dpmpp2m), ("pndm", .pndm)] {
            var req = GenerationRequest(prompt: "a knight with a red sword")
            req.negativePrompt = "blurry"; req.steps = 5; req.guidanceScale = 6; req.width = 16; req.height = 16
            req.scheduler = kind; req.seed = 77; req.strength = 0.6
            req.initImage = try r.tensor("a.image")
            let ours = try pipe.generate(req).latents, ref = try r.tensor("a.\(name)")
            let scale = ref.toArray().map(abs).max()!
            let err = zip(ours.toArray(), ref.toArray()).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(err, 2e-3 * scale, "\(name): max abs error \(err), reference max \(scale)")
        }
    }
}
