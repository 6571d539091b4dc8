// RGB8 images ↔ model tensors in [−1, 1] (diffusers' VaeImageProcessor: x/255·2 − 1).

import Pipeline
import Preview

enum ImageTensors {
    /// [1, 3, H, W] in [−1, 1]; alpha is dropped.
    static func tensor(from img: RGBImage) -> Tensor {
        let (w, h, c) = (img.width, img.height, img.channels)
        let t = Tensor(uninitialized: [1, 3, h, w])
        let p = t.dataPointer
        for ch in 0..<3 {
            for i in 0..<(w * h) { p[ch * w * h + i] = Float(img.pixels[i * c + ch]) / 255 * 2 - 1 }
        }
        return t
    }
}
