// Where the subject is, from two predictions of one step: the prompt's and the prompt's without
// its subject word (DiffEdit, Couairon et al. 2022, §3.1). The cells where naming the subject
// changes the model's prediction are the subject's; the rest of the image (background, props,
// anything the other words draw) does not depend on it. Matches diffusers'
// `StableDiffusionDiffEditPipeline.generate_mask` (pipeline_stable_diffusion_diffedit.py) for one
// noise draw and one image: m = mean over channels of |f̂_prompt − f̂_subjectless|, clamped at
// `thresholdingRatio`·mean(m) and divided by it, then 1 where above 0.5, else 0. DiffEdit
// computes it once, on an input image noised to a fixed strength; here it is recomputed every
// step from the current latents, since there is no input image (ClusterGuidance).

public enum SubjectMask {
    /// diffusers' `mask_thresholding_ratio` default.
    public static let thresholdingRatio: Float = 3

    /// The mask [n, 1, h, w] (0 or 1) of predictions [n, C, h, w], each image on its own mean.
    public static func diffEdit(prompt: Tensor, subjectless: Tensor, thresholdingRatio ratio: Float = thresholdingRatio) -> Tensor {
        precondition(prompt.shape == subjectless.shape && prompt.rank == 4, "two predictions [n, C, h, w] of one shape")
        let (n, c, h, w) = (prompt.shape[0], prompt.shape[1], prompt.shape[2], prompt.shape[3])
        let a = prompt.contiguous().toArray(), b = subjectless.contiguous().toArray()
        let cells = h * w
        var out = [Float](repeating: 0, count: n * cells)
        for i in 0..<n {
            var m = [Float](repeating: 0, count: cells)
            for ch in 0..<c {
                let base = (i * c + ch) * cells
                for k in 0..<cells { m[k] += abs(a[base + k] - b[base + k]) }
            }
            for k in 0..<cells { m[k] /= Float(c) }
            let clamp = m.reduce(0, +) / Float(cells) * ratio
            guard clamp > 0 else { continue }       // identical predictions: no subject found, no cell masked
            for k in 0..<cells where min(m[k], clamp) / clamp > 0.5 { out[i * cells + k] = 1 }
        }
        return Tensor(out, shape: [n, 1, h, w])
    }
}
