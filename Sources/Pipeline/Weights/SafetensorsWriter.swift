// Writes safetensors files: header JSON padded with spaces to 8-byte alignment (as the
// Python writer does), tensors in name order, F32 or F16 on disk. The write is atomic:
// temp file in the same directory, fsync, rename, fsync of the directory.

import Foundation

public enum SafetensorsWriter {
    public enum DiskType: String, Sendable { case f32 = "F32", f16 = "F16" }

    public static func write(_ tensors: [String: Tensor], to path: String,
                             dtype: DiskType = .f32, metadata: [String: String] = [:]) throws {
        let names = tensors.keys.sorted()
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let size = dtype == .f32 ? 4 : 2
        for name in names {
            let t = tensors[name]!
            let bytes = t.count * size
            header[name] = ["dtype": dtype.rawValue, "shape": t.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        var len = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &len) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let t = tensors[name]!.contiguous()
            let n = t.count
            if dtype == .f32 {
                out.append(UnsafeBufferPointer(start: t.dataPointer, count: n))
            } else {
                var half = [UInt16](repeating: 0, count: n)
                half.withUnsafeMutableBufferPointer { HalfConversion.floatToFP16(t.dataPointer, $0.baseAddress!, count: n) }
                half.withUnsafeBufferPointer { out.append($0) }
            }
        }
        do { try AtomicFile.write(out, to: path) } catch {
            throw SafetensorsError.writeFailed(file: path, reason: "\(error)")
        }
    }
}
