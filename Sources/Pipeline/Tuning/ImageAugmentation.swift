// Augmentation of a character's accepted references for the LoRA stages (design §4 stage 1):
// random-resized crops (torchvision's RandomResizedCrop with the aspect kept: a square of side
// s·H, s ∈ [1 − crop, 1], at a random place, resized back bilinearly with half-pixel centres as
// F.interpolate(align_corners=False)) and colour jitter (torchvision's adjust_brightness,
// adjust_contrast, adjust_saturation, each by a factor 1 + U(−j, j), in that order — ColorJitter
// shuffles the order; contrast blends toward the image's mean grey, saturation toward each
// pixel's grey, torchvision's rgb_to_grayscale weights 0.2989, 0.587, 0.114). A few references are expanded
// into fixed augmented copies once (encoded once), so a step costs what it did without.
// Off unless asked: on troupe-mini a crop draws the sprite at a size the World never shows and
// colour jitter changes the hair, skin and outfit colours that are the character's identity.

import Foundation

public struct ImageAugmentation: Codable, Sendable, Equatable {
    /// Largest fraction of the side a crop removes (0: no crops).
    public var crop: Float = 0
    /// Amplitude j of the brightness, contrast and saturation factors (0: none).
    public var colorJitter: Float = 0
    /// Augmented copies made of each reference (besides the reference itself).
    public var copies = 8
    public init() {}

    public var isActive: Bool { (crop > 0 || colorJitter > 0) && copies > 0 }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ImageAugmentation()
        crop = try c.decode(.crop, or: d.crop); colorJitter = try c.decode(.colorJitter, or: d.colorJitter); copies = try c.decode(.copies, or: d.copies)
    }

    /// Checks the settings: crop in [0, 0.5], jitter in [0, 0.5], copies in 0…64.
    public func validated() throws -> ImageAugmentation {
        guard crop.isFinite, (0...0.5).contains(crop), colorJitter.isFinite, (0...0.5).contains(colorJitter), (0...64).contains(copies) else {
            throw GenerationError.badValue("augmentation: crop and colour jitter must be in 0…0.5 and copies in 0…64, got crop \(crop), jitter \(colorJitter), copies \(copies)")
        }
        return self
    }

    /// Each image [1, 3, H, W] in [−1, 1] followed by its augmented copies (a function of `seed`).
    public func expand(_ images: [Tensor], seed: UInt64) -> [Tensor] {
        guard isActive else { return images }
        var r = SplitMixRandom(seed: seed ^ 0xA06_3E47)
        return images.flatMap { img in [img] + (0..<copies).map { _ in augmented(img, &r) } }
    }

    /// One random augmentation of `image` [1, 3, H, W] in [−1, 1].
    public func augmented(_ image: Tensor, _ r: inout SplitMixRandom) -> Tensor {
        var x = image.contiguous()
        if crop > 0 {
            let (h, w) = (x.shape[2], x.shape[3])
            let s = 1 - crop * r.nextFloat()
            let ch = Float(h) * s, cw = Float(w) * s
            let y0 = (Float(h) - ch) * r.nextFloat(), x0 = (Float(w) - cw) * r.nextFloat()
            x = x.resampledBilinear(y0: y0, x0: x0, height: ch, width: cw)
        }
        if colorJitter > 0 {
            let b = 1 + colorJitter * (2 * r.nextFloat() - 1), c = 1 + colorJitter * (2 * r.nextFloat() - 1), s = 1 + colorJitter * (2 * r.nextFloat() - 1)
            x = x.jitteredColour(brightness: b, contrast: c, saturation: s)
        }
        return x
    }
}

extension Tensor {
    /// The window [y0, y0+height) × [x0, x0+width) of [1, C, H, W], resampled bilinearly to H×W
    /// (sample centres at half pixels, edges clamped to the window): torchvision's resized_crop
    /// (bilinear, antialias off) for whole-pixel windows.
    func resampledBilinear(y0: Float, x0: Float, height: Float, width: Float) -> Tensor {
        let (ch, h, w) = (shape[1], shape[2], shape[3])
        let src = contiguous(), out = Tensor(uninitialized: shape)
        let p = src.dataPointer, q = out.dataPointer
        // The window's last row and column: a sample never reads past the crop (F.interpolate
        // on the cropped tensor clamps there, and below 0 in the crop's own coordinates).
        let yEnd = Swift.min(Int((y0 + height).rounded(.up)) - 1, h - 1), xEnd = Swift.min(Int((x0 + width).rounded(.up)) - 1, w - 1)
        for oy in 0..<h {
            let sy = Swift.min(Swift.max(y0 + Swift.max((Float(oy) + 0.5) * height / Float(h) - 0.5, 0), 0), Float(h - 1))
            let iy = Int(sy), fy = sy - Float(iy), iy1 = Swift.min(iy + 1, yEnd)
            for ox in 0..<w {
                let sx = Swift.min(Swift.max(x0 + Swift.max((Float(ox) + 0.5) * width / Float(w) - 0.5, 0), 0), Float(w - 1))
                let ix = Int(sx), fx = sx - Float(ix), ix1 = Swift.min(ix + 1, xEnd)
                for c in 0..<ch {
                    let b = c * h * w
                    let top = p[b + iy * w + ix] * (1 - fx) + p[b + iy * w + ix1] * fx
                    let bottom = p[b + iy1 * w + ix] * (1 - fx) + p[b + iy1 * w + ix1] * fx
                    q[b + oy * w + ox] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }

    /// torchvision's adjust_brightness, adjust_contrast, adjust_saturation in that order, on
    /// [1, 3, H, W] in [−1, 1] (computed in [0, 1], clamped after each, as torchvision does).
    func jitteredColour(brightness: Float, contrast: Float, saturation: Float) -> Tensor {
        let n = shape[2] * shape[3]
        let src = contiguous()
        var px = (0..<(3 * n)).map { (src.dataPointer[$0] + 1) / 2 }
        func clamp(_ v: Float) -> Float { Swift.min(Swift.max(v, 0), 1) }
        func grey(_ i: Int) -> Float { 0.2989 * px[i] + 0.587 * px[n + i] + 0.114 * px[2 * n + i] }
        for i in px.indices { px[i] = clamp(px[i] * brightness) }
        let mean = (0..<n).reduce(Float(0)) { $0 + grey($1) } / Float(n)
        for i in px.indices { px[i] = clamp(contrast * px[i] + (1 - contrast) * mean) }
        let greys = (0..<n).map(grey)
        for c in 0..<3 { for i in 0..<n { px[c * n + i] = clamp(saturation * px[c * n + i] + (1 - saturation) * greys[i]) } }
        return Tensor(px.map { $0 * 2 - 1 }, shape: shape)
    }
}
