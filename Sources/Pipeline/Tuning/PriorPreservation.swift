// DreamBooth's prior preservation (Ruiz et al. 2023 §3.3; diffusers' train_dreambooth_lora.py
// --with_prior_preservation): images the base model draws from the class prompt before any
// tuning, which stage 2 keeps denoising under that prompt so the class word still means any
// member of the class. One recipe for `tune stage2`, `eval` and `bench tune`.

public enum PriorPreservation {
    /// Class images a stage-2 run draws.
    public static let classImageCount = 4

    /// The class prompt: "a <base word>".
    public static func classPrompt(baseWord: String) -> String { "a \(baseWord)" }

    /// `count` class images [1, 3, H, W] in [−1, 1] from the base model (call before attaching
    /// any adapter): seeds 10 000 + k, 20 steps, the model's guidance scale.
    public static func classImages(pipeline: StableDiffusionPipeline, baseWord: String, count: Int = classImageCount) throws -> [Tensor] {
        try (0..<count).map { k in
            var r = pipeline.request(prompt: classPrompt(baseWord: baseWord))
            r.seed = 10_000 &+ UInt64(k); r.steps = 20
            let out = try pipeline.generate(r)
            return GradMode.noGrad { WorldBatch.tensor(rgb8: [out.images[0]], size: out.width) }
        }
    }
}
