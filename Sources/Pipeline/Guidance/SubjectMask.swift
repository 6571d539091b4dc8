// Where the subject is, from two predictions of one step: the prompt's and the prompt's without
// its subject word (DiffEdit, Couairon et al. 2022, §3.1). The cells where naming the subject
// changes the model's prediction are the subject's; the rest of the image (background, props,
// anything the other words draw) does not depend on it. Matches diffusers'
// `StableDiffusionDiffEditPipeline.generate_mask` (pipeline_stable_diffusion_diffedit.py) for one
// noise draw and one image: m = mean over channels of |f̂_prompt − f̂_subjectless|, clamped at
// `thresholdingRatio`·mean(m) and divided by it, then 1 where above 0.5, else 0. DiffEdit
// computes it once, on an input image noised to a fixed strength; here it is recomputed every
// step from the current latents, since there is no input image (ClusterGuidance).
//
// `boxed` fills each mask's bounding box (plus a margin of `margin` cells): the subject word
// changes the prediction most where the subject differs from what the rest of the prompt would
// draw anyway (a knight's shield and helmet; a robot's body) and little on the parts any
// character has (a face, an outfit), so the raw mask has holes exactly where a character's
// identity is; the box of it covers the whole figure and still leaves out what lies beside it
// (on troupe-mini the emote balloon in its corner, the background). Checked on troupe-mini's
// masks at every step of 25 (4 seeds, a knight and a robot): the box covered the figure and
// never the balloon.

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

    /// Each mask [n, 1, h, w] replaced by its bounding box grown by `margin` cells (clipped to
    /// the map); an empty mask stays empty.
    public static func boxed(_ mask: Tensor, margin: Int = 1) -> Tensor {
        precondition(mask.rank == 4 && mask.shape[1] == 1, "masks [n, 1, h, w]")
        let (n, h, w) = (mask.shape[0], mask.shape[2], mask.shape[3])
        let m = mask.contiguous().toArray()
        var out = [Float](repeating: 0, count: m.count)
        for i in 0..<n {
            var (y0, y1, x0, x1) = (h, -1, w, -1)
            for y in 0..<h { for x in 0..<w where m[(i * h + y) * w + x] > 0 { y0 = min(y0, y); y1 = max(y1, y); x0 = min(x0, x); x1 = max(x1, x) } }
            guard y1 >= 0 else { continue }
            for y in max(0, y0 - margin)...min(h - 1, y1 + margin) { for x in max(0, x0 - margin)...min(w - 1, x1 + margin) { out[(i * h + y) * w + x] = 1 } }
        }
        return Tensor(out, shape: mask.shape)
    }
}
