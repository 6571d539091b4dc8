// Sixel through libsixel: scale an RGB image to a pixel size with libsixel's resampler, build a
// palette (median cut, up to the terminal's colour registers) with Floyd–Steinberg
// diffusion, and encode to a DCS … ST byte string. Decoding (libsixel) serves the tests.

import CSixel
import Foundation

public enum SixelError: Error, CustomStringConvertible {
    case libsixel(String, status: Int32)
    public var description: String {
        switch self { case let .libsixel(what, s): return "libsixel \(what) failed (status 0x\(String(s, radix: 16)))" }
    }
}

public enum Sixel {
    /// The image as 8-bit RGB (alpha composited over `background`).
    public static func rgb(_ img: RGBImage, background: (UInt8, UInt8, UInt8) = (0, 0, 0)) -> RGBImage {
        if img.channels == 3 { return img }
        var out = [UInt8](repeating: 0, count: img.width * img.height * 3)
        let bg = [background.0, background.1, background.2]
        for i in 0..<(img.width * img.height) {
            let a = Int(img.pixels[i * 4 + 3])
            for c in 0..<3 { out[i * 3 + c] = UInt8((Int(img.pixels[i * 4 + c]) * a + Int(bg[c]) * (255 - a) + 127) / 255) }
        }
        return RGBImage(width: img.width, height: img.height, pixels: out)
    }

    /// Resamples to width × height (bilinear when shrinking a lot is not needed; Lanczos-3 by
    /// default) through libsixel.
    public static func scaled(_ img: RGBImage, width: Int, height: Int, filter: Int32 = SIXEL_RES_LANCZOS3) throws -> RGBImage {
        let src = rgb(img)
        if src.width == width && src.height == height { return src }
        var out = [UInt8](repeating: 0, count: width * height * 3)
        let status = out.withUnsafeMutableBufferPointer { dst in
            src.pixels.withUnsafeBufferPointer { s in
                sixel_helper_scale_image(dst.baseAddress, s.baseAddress, Int32(src.width), Int32(src.height),
                                         SIXEL_PIXELFORMAT_RGB888, Int32(width), Int32(height), filter, nil)
            }
        }
        if status & 0x1000 != 0 { throw SixelError.libsixel("scale", status: status) }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Resized for display: whole-number enlargements stay crisp (nearest neighbour, a sprite's
    /// pixels as squares), anything else is resampled with Lanczos-3.
    public static func resizedForDisplay(_ img: RGBImage, width: Int, height: Int) throws -> RGBImage {
        let whole = width >= img.width && width % img.width == 0 && height % img.height == 0
        return try scaled(img, width: width, height: height, filter: whole ? SIXEL_RES_NEAREST : SIXEL_RES_LANCZOS3)
    }

    private final class Sink { var bytes: [UInt8] = [] }

    /// Sixel bytes for `img` with at most `colors` palette entries (2…256). `diffuse`: Floyd–
    /// Steinberg error diffusion (smooth gradients); off for whole-number enlargements, where
    /// dithering would break each source pixel's square into noise.
    public static func encode(_ img: RGBImage, colors: Int = 256, diffuse: Bool = true) throws -> [UInt8] {
        var src = rgb(img)
        let sink = Sink()
        let box = Unmanaged.passRetained(sink)
        defer { box.release() }
        var output: OpaquePointer?
        var status = sixel_output_new(&output, { data, size, priv in
            let s = Unmanaged<Sink>.fromOpaque(priv!).takeUnretainedValue()
            data!.withMemoryRebound(to: UInt8.self, capacity: Int(size)) { s.bytes.append(contentsOf: UnsafeBufferPointer(start: $0, count: Int(size))) }
            return Int32(size)
        }, box.toOpaque(), nil)
        guard status & 0x1000 == 0, let output else { throw SixelError.libsixel("output", status: status) }
        defer { sixel_output_unref(output) }
        var dither: OpaquePointer?
        status = sixel_dither_new(&dither, Int32(max(2, min(colors, 256))), nil)
        guard status & 0x1000 == 0, let dither else { throw SixelError.libsixel("dither", status: status) }
        defer { sixel_dither_unref(dither) }
        status = src.pixels.withUnsafeMutableBufferPointer { p in
            sixel_dither_initialize(dither, p.baseAddress, Int32(src.width), Int32(src.height), SIXEL_PIXELFORMAT_RGB888,
                                    SIXEL_LARGE_AUTO, SIXEL_REP_AUTO, SIXEL_QUALITY_AUTO)
        }
        guard status & 0x1000 == 0 else { throw SixelError.libsixel("palette", status: status) }
        sixel_dither_set_diffusion_type(dither, diffuse ? SIXEL_DIFFUSE_FS : SIXEL_DIFFUSE_NONE)
        status = src.pixels.withUnsafeMutableBufferPointer { p in
            sixel_encode(p.baseAddress, Int32(src.width), Int32(src.height), 3, dither, output)
        }
        guard status & 0x1000 == 0 else { throw SixelError.libsixel("encode", status: status) }
        return sink.bytes
    }

    /// Decodes sixel bytes back to RGB (libsixel's decoder).
    public static func decode(_ bytes: [UInt8]) throws -> RGBImage {
        var data = bytes
        var pixels: UnsafeMutablePointer<UInt8>?, palette: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0, n: Int32 = 0
        let status = data.withUnsafeMutableBufferPointer { sixel_decode_raw($0.baseAddress, Int32($0.count), &pixels, &w, &h, &palette, &n, nil) }
        guard status & 0x1000 == 0, let pixels, let palette else { throw SixelError.libsixel("decode", status: status) }
        defer { free(pixels); free(palette) }
        var out = [UInt8](repeating: 0, count: Int(w * h) * 3)
        for i in 0..<Int(w * h) {
            let idx = Int(pixels[i])
            // palette entries are 3 bytes (RGB) per colour in sixel_decode_raw
            for c in 0..<3 { out[i * 3 + c] = palette[idx * 3 + c] }
        }
        return RGBImage(width: Int(w), height: Int(h), pixels: out)
    }

    /// The largest size with the image's aspect inside `maxWidth` × `maxHeight` pixels.
    public static func fit(width: Int, height: Int, maxWidth: Int, maxHeight: Int) -> (Int, Int) {
        let s = min(Double(maxWidth) / Double(width), Double(maxHeight) / Double(height))
        return (max(1, Int((Double(width) * s).rounded(.down))), max(1, Int((Double(height) * s).rounded(.down))))
    }
}
