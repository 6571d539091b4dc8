// The optional loss terms of train-base's UNet phase, beside the plain ε-MSE (each documented
// on its BaseTrainingConfig weight): the face-weighted and the detail-weighted ε loss, the
// expression and colour contrasts (diffusion-classifier cross-entropies over contrasting
// captions) and the training judge's loss on x̂₀. The caption probe lives in CaptionProbe.swift.

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

    /// The timesteps a caption contrast reads: below 100 the noisy latent already shows the
    /// answer, from 800 on no caption explains the noise better than another.
    static let contrastTimesteps = 100..<800

    /// One row of a caption contrast: the batch row, the captions it is contrasted with (the
    /// row's own caption is the true class) and the latent cells (h·w, 0 or 1) whose ε error
    /// makes the logits.
    struct ContrastRow {
        let row: Int
        let alternatives: [String]
        let cells: [Float]
    }

    /// The diffusion-classifier cross-entropy of `rows` (Li et al. 2023; Qu et al. 2024): per
    /// row, the UNet also predicts ε under each alternative caption at the same x_t (detached)
    /// and timestep; logits are minus the squared ε error summed over the row's cells, the
    /// row's own prediction first, and the loss is their cross-entropy with class 0. Every row
    /// has the same number of alternatives.
    func captionContrastLoss(_ rows: [ContrastRow], xt: Tensor, eps: Tensor, noise: Tensor, timesteps: [Int]) -> Tensor {
        let others = rows[0].alternatives.count
        precondition(rows.allSatisfy { $0.alternatives.count == others }, "caption contrast: rows with different alternative counts")
        let altRows = rows.flatMap { r in [Int](repeating: r.row, count: others) }
        let context = textEncoder(rows.flatMap(\.alternatives).map { tokenizer.encode($0) })
        let epsAlt = unet(xt.selectingRows(altRows).detached(), timesteps: altRows.map { Float(timesteps[$0]) }, context: context).sample
        let (h, w) = (eps.shape[2], eps.shape[3])
        let mask = Tensor(rows.flatMap(\.cells), shape: [rows.count, 1, h, w])
        let altMask = Tensor(rows.flatMap { r in (0..<others).flatMap { _ in r.cells } }, shape: [altRows.count, 1, h, w])
        let own = rows.map(\.row)
        let ownError = ((eps.selectingRows(own) - noise.selectingRows(own)).square() * mask).sum(axes: [1, 2, 3])
        let altError = ((epsAlt - noise.selectingRows(altRows)).square() * altMask).sum(axes: [1, 2, 3])
        let k = rows.count
        let logits = Tensor.concat([ownError.reshaped([k, 1]), altError.reshaped([k, others])], dim: 1) * -1
        return logits.crossEntropy([Int](repeating: 0, count: k))
    }

    /// The expression contrast (see `expressionContrastWeight`): each other expression word,
    /// over the face cells; nil when no sample of the batch qualifies (a non-empty caption
    /// naming its expression, t in `contrastTimesteps`).
    func expressionContrastLoss(samples: [WorldSample], xt: Tensor, eps: Tensor, noise: Tensor, timesteps: [Int]) -> Tensor? {
        let (h, w) = (eps.shape[2], eps.shape[3])
        let face = Self.faceMask(height: h, width: w, imageSize: architecture.imageSize)
        let rows = (0..<samples.count).filter {
            Self.contrastTimesteps.contains(timesteps[$0]) && samples[$0].caption.contains(samples[$0].scene.expression.word)
        }.prefix(state.config.expressionContrastRows).map { r in
            let s = samples[r]
            return ContrastRow(row: r, alternatives: Expression.allCases.filter { $0 != s.scene.expression }.map {
                World.caption(s.caption, replacing: s.scene.expression, with: $0)
            }, cells: face)
        }
        return rows.isEmpty ? nil : captionContrastLoss(rows, xt: xt, eps: eps, noise: noise, timesteps: timesteps)
    }

    /// The colour contrast (see `colorContrastWeight`): for a row whose caption names a colour
    /// attribute, one of them drawn, the same caption with `colorContrastAlternatives` other
    /// values of it (World.caption(_:as:) re-phrases it with the same choices), over the latent
    /// cells where the sprite changes with that colour; nil when no sample qualifies.
    func colorContrastLoss(samples: [WorldSample], xt: Tensor, eps: Tensor, noise: Tensor, timesteps: [Int],
                           using r: inout SplitMixRandom) -> Tensor? {
        let cfg = state.config
        let world = self.world(Self.unetWorldOffset)
        let (h, w) = (eps.shape[2], eps.shape[3])
        var rows: [ContrastRow] = []
        for (i, s) in samples.enumerated() where rows.count < cfg.colorContrastRows && Self.contrastTimesteps.contains(timesteps[i]) {
            let named = Self.colorAttributes.filter { s.namedAttributes.contains($0.rawValue) }
            guard !named.isEmpty else { continue }
            let attribute = named[Int(r.next() % UInt64(named.count))]
            var values = (0..<attribute.classes).filter { $0 != attribute.label(s.identity, s.scene) }
            for j in stride(from: values.count - 1, to: 0, by: -1) { values.swapAt(j, Int(r.next() % UInt64(j + 1))) }
            let others = values.prefix(cfg.colorContrastAlternatives).map { s.identity.setting(attribute, to: $0)! }
            let captions = others.compactMap { world.caption(s.index, as: $0) }
            guard captions.count == others.count, !captions.contains(s.caption) else { continue }
            let changed = World.changedPixels(s.identity, s.scene, variants: others)
            let cells = Self.detailMask(changed, height: h, width: w, imageSize: architecture.imageSize)
            guard cells.contains(where: { $0 > 0 }) else { continue }
            rows.append(ContrastRow(row: i, alternatives: captions, cells: cells))
        }
        return rows.isEmpty ? nil : captionContrastLoss(rows, xt: xt, eps: eps, noise: noise, timesteps: timesteps)
    }

    /// The identity attributes that are colours — what a scene's colour words can be confused with.
    static let colorAttributes: [WorldAttribute] = [.skin, .hairColor, .eyeColor, .outfitColor]

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
