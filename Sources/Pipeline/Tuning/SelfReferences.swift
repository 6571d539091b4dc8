// Self-generated references for stage 3 (The Chosen One, Avrahami et al. 2024, §3: generate
// many images, keep the most cohesive set, tune on it; here one round, anchored on the accepted
// references): after stage 2 the tuned model draws the character under random scene words
// ("<prompt>, <pose>, <expression>, <background>, <view>", the World captions' first template);
// the IdentityEncoder ranks the drawings by cos(E(x), ē), ē the accepted references' mean
// identity vector (normalised); the `keep` nearest join the references, each under its own
// prompt. Four accepted references show the character in four scenes; the kept drawings show
// it, unchanged, under scene words the references never had — "under a blue sky" without the
// blue outfit the base model's binding would give it.

import Foundation

public enum SelfReferences {
    public struct Drawing {
        /// [1, 3, H, W] in [−1, 1], and the RGB8 pixels it was made from (what a run folder keeps).
        public let image: Tensor
        public let pixels: [UInt8]
        public let prompt: String
        /// cos(E(image), ē).
        public let similarity: Float
    }

    /// How many drawings each kept one is chosen from.
    public static let candidatesPerKept = 4

    /// The prompt of a drawing: `prompt` in a random scene from `r`.
    public static func scenePrompt(_ prompt: String, _ r: inout SplitMixRandom) -> String {
        let s = World.randomScene(&r)
        return "\(prompt), \(s.pose.word), \(s.expression.word), \(s.background.word), \(s.view.word)"
    }

    /// `keep` drawings of `prompt` (out of `keep · candidatesPerKept`) by the pipeline as it is
    /// (with the tuned adapters attached), nearest the references' identity, best first.
    public static func draw(pipeline: StableDiffusionPipeline, prompt: String, references: [Tensor], encoder: IdentityEncoder,
                            keep: Int, guidanceScale: Float, seed: UInt64) throws -> [Drawing] {
        guard keep > 0 else { return [] }
        guard !references.isEmpty else { throw GenerationError.badValue("self-references need the accepted references") }
        let refs = encoder.embed(Tensor.concat(references, dim: 0))
        let sum = refs.sum(axes: [0], keepDim: true)
        let anchor = sum / (sum.square().sum(axes: [1], keepDim: true) + 1e-8).sqrt()
        var r = SplitMixRandom(seed: seed ^ 0x5E1F_DEA1)
        var drawings: [Drawing] = []
        for i in 0..<(keep * candidatesPerKept) {
            var request = pipeline.request(prompt: scenePrompt(prompt, &r))
            request.seed = seed &+ UInt64(i)
            request.guidanceScale = guidanceScale
            let out = try pipeline.generate(request)
            guard out.width == World.imageSize, out.height == World.imageSize else {
                throw GenerationError.badValue("self-references read \(World.imageSize)×\(World.imageSize) images; the model draws \(out.width)×\(out.height)")
            }
            let image = WorldBatch.tensor(rgb8: [out.images[0]], size: World.imageSize)
            let similarity = (encoder.embed(image) * anchor).sum().item()
            drawings.append(Drawing(image: image, pixels: out.images[0], prompt: request.prompt, similarity: similarity))
        }
        return Array(drawings.sorted { $0.similarity > $1.similarity }.prefix(keep))
    }
}
