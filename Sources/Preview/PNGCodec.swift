// PNG encode/decode through libpng's simplified API (png_image), which converts every input
// kind (grey, palette, 16-bit, alpha) to 8-bit RGB or RGBA for us.

import CPNG
import FileSafety
import Foundation

public enum PNGError: Error, CustomStringConvertible, Equatable {
    case read(file: String, reason: String)
    case write(file: String, reason: String)
    case tooLarge(file: String, width: Int, height: Int, limit: Int)

    public var description: String {
        switch self {
        case let .read(f, r): return "\(f): cannot read PNG (\(r))"
        case let .write(f, r): return "\(f): cannot write PNG (\(r))"
        case let .tooLarge(f, w, h, l): return "\(f): \(w)×\(h) exceeds the \(l)-pixel limit"
        }
    }
}

public enum PNGCodec {
    /// Largest image decoded (pixels): refuses allocation bombs from forged headers.
    public static let maxPixels = 1 << 26

    public static func read(path: String) throws -> RGBImage {
        if let why = RegularFile.problem(path) { throw PNGError.read(file: path, reason: why) }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            throw PNGError.read(file: path, reason: message(image))
        }
        defer { png_image_free(&image) }
        let w = Int(image.width), h = Int(image.height)
        if w * h > maxPixels { throw PNGError.tooLarge(file: path, width: w, height: h, limit: maxPixels) }
        let hasAlpha = (image.format & UInt32(PNG_FORMAT_FLAG_ALPHA)) != 0
        image.format = hasAlpha ? TROUPE_PNG_FORMAT_RGBA : TROUPE_PNG_FORMAT_RGB
        let channels = hasAlpha ? 4 : 3
        var pixels = [UInt8](repeating: 0, count: w * h * channels)
        let ok = pixels.withUnsafeMutableBytes { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, Int32(w * channels), nil)
        }
        guard ok != 0 else { throw PNGError.read(file: path, reason: message(image)) }
        return RGBImage(width: w, height: h, channels: channels, pixels: pixels)
    }

    /// Encodes to PNG bytes in memory.
    public static func encode(_ img: RGBImage) throws -> Data {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(img.width)
        image.height = UInt32(img.height)
        image.format = img.channels == 4 ? TROUPE_PNG_FORMAT_RGBA : TROUPE_PNG_FORMAT_RGB
        var size: png_alloc_size_t = 0
        let stride = Int32(img.width * img.channels)
        // First call measures, second writes.
        guard png_image_write_to_memory(&image, nil, &size, 0, img.pixels, stride, nil) != 0 else {
            throw PNGError.write(file: "<memory>", reason: message(image))
        }
        var data = Data(count: Int(size))
        let ok = data.withUnsafeMutableBytes { buf in
            png_image_write_to_memory(&image, buf.baseAddress, &size, 0, img.pixels, stride, nil)
        }
        guard ok != 0 else { throw PNGError.write(file: "<memory>", reason: message(image)) }
        return data.prefix(Int(size))
    }

    private static func message(_ image: png_image) -> String {
        var m = image.message
        return withUnsafeBytes(of: &m) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}
