// The optional loss terms of train-base's UNet phase, beside the plain ε-MSE (each documented
// on its BaseTrainingConfig weight): the face-weighted and the detail-weighted ε loss, the
// expression contrast (a diffusion-classifier cross-entropy) and the training judge's loss on
// x̂₀. The caption probe lives in CaptionProbe.swift.

import Foundation

extension BaseModelTrainer {
    /// 1 on the cells of an [h, w] grid over the image (a latent, or the pixels themselves) that
    /// World.expressionRegions (face and emote balloon) touch (cell = imageSize / w pixels
    /// square), 0 elsewhere.
    static func faceMask(height h: Int, width w: Int, imageSize: Int) -> [Float] {
        let sy = imageSize / h, sx = imageSize / w
        var m = [Float](repeating: 0, count: h * w)
        for f in World.expressionRegions {
            for y in (f.y0 / sy)..<((f.y1 + sy - 1) / sy) { for x in (f.x0 / sx)..<((f.x1 + sx - 1) / sx) { m[y * w + x] = 1 } }
        }
        return m
    }

    /// Per-cell weights: 1 + λ on the face cells, 1 elsewhere, divided by their mean; [1, 1, h, w].
    static func faceWeights(height h: Int, width w: Int, weight λ: Float, imageSize: Int) -> Tensor {
        let m = faceMask(height: h, width: w, imageSize: imageSize).map { 1 + λ * $0 }
        let mean = m.reduce(0, +) / Float(m.count)
        return Tensor(m.map { $0 / mean }, shape: [1, 1, h, w])
    }

    /// ε-MSE with the face cells weighted by 1 + λ (mean weight 1).
    static func faceWeightedMSE(_ eps: Tensor, _ noise: Tensor, weight λ: Float, imageSize: Int) -> Tensor {
        let w = faceWeights(height: eps.shape[2], width: eps.shape[3], weight: λ, imageSize: imageSize)
        return ((eps - noise).square() * w).mean()
    }

    /// 1 on the cells of an [h, w] grid (the latent) that any of `pixels` (imageSize² row-major,
    /// World.namedDetailPixels) falls in, 0 elsewhere; all 0 for an empty mask.
    static func detailMask(_ pixels: [Bool], height h: Int, width w: Int, imageSize: Int) -> [Float] {
        var m = [Float](repeating: 0, count: h * w)
        guard !pixels.isEmpty else { return m }
        let sy = imageSize / h, sx = imageSize / w
        for y in 0..<imageSize { for x in 0..<imageSize where pixels[y * imageSize + x] { m[(y / sy) * w + x / sx] = 1 } }
        return m
    }

    /// λ · mean((ε̂ − ε)² · mask) over the batch, the mask [B, 1, h, w] of each sample's named
    /// details (detailMask): added to the ε-MSE, it weighs those cells 1 + λ. Nil when no sample
    /// of the batch names a detail.
    static func detailLoss(_ eps: Tensor, _ noise: Tensor, samples: [WorldSample], weight λ: Float, imageSize: Int) -> Tensor? {
        let (b, h, w) = (eps.shape[0], eps.shape[2], eps.shape[3])
        var mask: [Float] = []
        for s in samples.prefix(b) { mask += detailMask(World.namedDetailPixels(s), height: h, width: w, imageSize: imageSize) }
        guard mask.contains(where: { $0 > 0 }) else { return nil }
        let m = Tensor(mask, shape: [b, 1, h, w])
        return ((eps - noise).square() * m).mean() * λ
    }

    /// The expression-contrast cross-entropy (see `expressionContrastWeight`); nil when no
    /// sample of the batch qualifies (a non-empty caption naming its expression, t in [100, 800)).
    func expressionContrastLoss(samples: [WorldSample], xt: Tensor, eps: Tensor, noise: Tensor, timesteps: [Int]) -> Tensor? {
        let rows = Array((0..<samples.count).filter {
            (100..<800).contains(timesteps[$0]) && samples[$0].caption.contains(samples[$0].scene.expression.word)
        }.prefix(state.config.expressionContrastRows))
        guard !rows.isEmpty else { return nil }
        // Per row: the true expression first, then the other four.
        var altRows: [Int] = [], altCaptions: [String] = []
        for r in rows {
            let s = samples[r]
            for e in Expression.allCases where e != s.scene.expression {
                altRows.append(r); altCaptions.append(World.caption(s.caption, replacing: s.scene.expression, with: e))
            }
        }
        let context = textEncoder(altCaptions.map { tokenizer.encode($0) })
        let epsAlt = unet(xt.selectingRows(altRows).detached(), timesteps: altRows.map { Float(timesteps[$0]) }, context: context).sample
        let (h, w) = (eps.shape[2], eps.shape[3])
        let faceOnly = Tensor(Self.faceMask(height: h, width: w, imageSize: architecture.imageSize), shape: [1, 1, h, w])
        func error(_ e: Tensor, _ idx: [Int]) -> Tensor {
            ((e - noise.selectingRows(idx)).square() * faceOnly).sum(axes: [1, 2, 3])
        }
        let k = rows.count, others = Expression.allCases.count - 1
        let logits = Tensor.concat([error(eps.selectingRows(rows), rows).reshaped([k, 1]), error(epsAlt, altRows).reshaped([k, others])], dim: 1) * -1
        return logits.crossEntropy([Int](repeating: 0, count: k))
    }

    /// Mean cross-entropy of the judge's context-attribute predictions on D(x̂₀), x̂₀ =
    /// (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t, for the first `judgeLossRows` samples with t below the
    /// threshold; nil when there are none. Gradients reach the UNet through ε̂ only (the
    /// decoder and the judge are frozen).
    func attributeLoss(_ judge: AttributeClassifier, samples: [WorldSample], xt: Tensor, eps: Tensor, timesteps: [Int]) -> Tensor? {
        let cfg = state.config
        let rows = Array((0..<timesteps.count).filter { timesteps[$0] < cfg.judgeLossMaxTimestep }.prefix(cfg.judgeLossRows))
        guard !rows.isEmpty else { return nil }
        for t in parameters["vae"]!.values where t.requiresGrad { t.requiresGrad = false }
        let x0 = schedule.predictedOriginal(eps.selectingRows(rows), xt: xt.selectingRows(rows).detached(), timesteps: rows.map { timesteps[$0] })
            * (1 / state.scalingFactor)
        return judge.meanCrossEntropy(vae.decode(x0), samples: rows.map { samples[$0] }, attributes: [.pose, .expression, .view, .background])
    }
}
