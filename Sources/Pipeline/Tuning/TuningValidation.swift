// How well a tuned model keeps its character under words it was not tuned with, read by the
// training-side IdentityEncoder (never the evaluation judge): `count` generations of the
// character's prompt with a random pose and expression (stage 3's vocabulary,
// PoseExpressionTerm), each one's identity vector's cosine to the mean identity vector of the
// accepted references, averaged. A tuning's outcome varies with its own random draws by as much
// as most method changes (docs/stages.md, the tuning seed); this score is what picks among several
// tunings of one character — an artist keeping the tuning whose samples look most like the
// references.

import Foundation

public enum TuningValidation {
    /// The score of the model as it is now (adapters attached), sampled with `request`'s
    /// settings (steps, guidance) under `count` pose/expression prompts drawn from `seed`.
    /// References: [1, 3, H, W] in [−1, 1], the size the encoder reads.
    public static func identityScore(pipeline: StableDiffusionPipeline, encoder: IdentityEncoder, references: [Tensor], prompt: String,
                                     request: GenerationRequest, count: Int = 8, seed: UInt64) throws -> Double {
        precondition(!references.isEmpty && count > 0, "validation needs references and samples")
        let target = GradMode.noGrad { IdentityEncoder.unit(encoder.embed(Tensor.concat(references, dim: 0)).mean(axes: [0], keepDim: true)) }
        var r = SplitMixRandom(seed: seed ^ 0x7A11_DA7E)
        var total = 0.0
        for i in 0..<count {
            var q = request
            q.prompt = PoseExpressionTerm.text(prompt, pose: Int(r.next() % UInt64(Pose.allCases.count)),
                                               expression: Int(r.next() % UInt64(Expression.allCases.count)))
            q.seed = seed &+ UInt64(i); q.count = 1
            let out = try pipeline.generate(q)
            guard out.width == World.imageSize, out.height == World.imageSize else {
                throw GenerationError.badValue("the IdentityEncoder reads \(World.imageSize)×\(World.imageSize) images; this model draws \(out.width)×\(out.height)")
            }
            let x = WorldBatch.tensor(rgb8: out.images, size: out.width)
            let e = encoder.embed(x)     // unit vectors
            total += Double(GradMode.noGrad { (e * target).sum() }.toArray()[0])
        }
        return total / Double(count)
    }
}
