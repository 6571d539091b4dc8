// PNG files with text chunks (the `parameters` chunk A1111 writes), through libpng's full
// API in CPNGSupport. Writes are atomic: a temp file beside the target, then rename.

import CPNGSupport
import FileSafety
import Foundation

extension PNGCodec {
    /// Writes `image` to `path` with tEXt/iTXt chunks, replacing any existing file atomically.
    public static func write(_ image: RGBImage, to requested: String, text: [(String, String)] = []) throws {
        let path: String
        do { path = try ReplaceTarget.resolve(requested) } catch { throw PNGError.write(file: requested, reason: "\(error)") }
        let tmp = ReplaceTarget.tempPath(beside: path)
        var err = [CChar](repeating: 0, count: 256)
        let keys = text.map { strdup($0.0) }, values = text.map { strdup($0.1) }
        defer { keys.forEach { free($0) }; values.forEach { free($0) } }
        let rc: Int32 = image.pixels.withUnsafeBufferPointer { px in
            keys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
                values.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                    troupe_png_write(tmp, px.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                                     k.baseAddress, v.baseAddress, Int32(text.count), &err, err.count)
                }
            }
        }
        guard rc == 0 else {
            unlink(tmp)
            throw PNGError.write(file: path, reason: String(cString: err) + (errno != 0 ? " (\(String(cString: strerror(errno))))" : ""))
        }
        guard rename(tmp, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw PNGError.write(file: path, reason: reason)
        }
        ReplaceTarget.syncDirectory(of: path)
    }

    /// The text chunks of a PNG, in file order.
    public static func readText(path: String) throws -> [(String, String)] {
        if let why = RegularFile.problem(path) { throw PNGError.read(file: path, reason: why) }
        var keys: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var values: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        var count: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        guard troupe_png_read_text(path, &keys, &values, &count, &err, err.count) == 0 else {
            throw PNGError.read(file: path, reason: String(cString: err))
        }
        defer { troupe_png_free_text(keys, values, count) }
        return (0..<Int(count)).map { (String(cString: keys![$0]!), String(cString: values![$0]!)) }
    }
}
