import XCTest
@testable import Pipeline
@testable import Studio

final class TuningValidationTests: XCTestCase {
    /// The score is the mean cosine between each validation sample's identity vector and the
    /// references' normalised mean vector — recomputed here from the same prompts and seeds —
    /// deterministic, and a reference scored against itself is 1; a model drawing at another
    /// size than the encoder reads is refused.
    func testScoreIsTheMeanCosineToTheReferences() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: JobTests.microModel))
        let encoder = try IdentityEncoder(seed: 3)
        var rng = SplitMixRandom(seed: 8)
        let size = World.imageSize     // the micro model draws at the encoder's size
        let refs = (0..<2).map { _ in Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng) }
        var q = pipe.request(prompt: "a knight"); q.steps = 2
        let score = try TuningValidation.identityScore(pipeline: pipe, encoder: encoder, references: refs, prompt: "a knight", request: q, count: 3, seed: 11)
        XCTAssertEqual(try TuningValidation.identityScore(pipeline: pipe, encoder: encoder, references: refs, prompt: "a knight", request: q, count: 3, seed: 11), score)
        // By hand: the prompts PoseExpressionTerm words, seeds 11, 12, 13.
        var r = SplitMixRandom(seed: 11 ^ 0x7A11_DA7E)
        let mean = encoder.embed(Tensor.concat(refs, dim: 0)).toArray()
        let d = IdentityEncoder.dimension
        var target = (0..<d).map { j in (mean[j] + mean[d + j]) / 2 }
        let norm = target.reduce(0) { $0 + $1 * $1 }.squareRoot(); target = target.map { $0 / norm }
        var total: Double = 0
        for i in 0..<3 {
            var one = q
            one.prompt = PoseExpressionTerm.text("a knight", pose: Int(r.next() % UInt64(Pose.allCases.count)), expression: Int(r.next() % UInt64(Expression.allCases.count)))
            XCTAssertTrue(one.prompt.hasPrefix("a knight, "), one.prompt)
            one.seed = 11 + UInt64(i); one.count = 1
            let out = try pipe.generate(one)
            let e = encoder.embed(WorldBatch.tensor(rgb8: out.images, size: out.width)).toArray()
            total += Double(zip(e, target).reduce(0) { $0 + $1.0 * $1.1 })
        }
        XCTAssertEqual(score, total / 3, accuracy: 1e-5)
        XCTAssertLessThanOrEqual(abs(score), 1)
        // A model whose every sample is the reference would score 1: the encoder's own check.
        let selfScore = GradMode.noGrad { () -> Float in
            let e = encoder.embed(refs[0]); return (e * e).sum().toArray()[0]
        }
        XCTAssertEqual(selfScore, 1, accuracy: 1e-4)
        let other = try StableDiffusionPipeline(folder: DiffusersFolder(path: TroupeRun.repo.appendingPathComponent("Tests/PipelineTests/Fixtures/sd/a").path))
        var small = other.request(prompt: "a knight"); small.steps = 2
        XCTAssertThrowsError(try TuningValidation.identityScore(pipeline: other, encoder: encoder, references: refs, prompt: "a knight", request: small, count: 1, seed: 1)) { e in
            XCTAssertTrue("\(e)".contains("reads \(World.imageSize)×\(World.imageSize)"), "\(e)")
        }
    }
}
