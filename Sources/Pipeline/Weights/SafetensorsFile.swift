// Reads safetensors (https://github.com/huggingface/safetensors format): an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape, data_offsets}, optional
// "__metadata__": {str: str}}, then the data section. The file is memory-mapped; F32 tensors
// that are 4-byte aligned are returned as views over the mapping (no copy), F16/BF16 are
// widened to F32 on demand, one tensor at a time.

import Foundation

public enum SafetensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"
    case u16 = "U16", u32 = "U32", u64 = "U64"

    public var size: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

public struct SafetensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Byte range within the data section.
    public let begin: Int, end: Int
}

public final class SafetensorsFile: @unchecked Sendable {
    /// Headers above this are refused before any allocation (real files stay far below).
    public static let headerLimit = 100 << 20

    public let path: String
    public let entries: [String: SafetensorsEntry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    public var names: [String] { entries.keys.sorted() }

    public init(path: String) throws {
        file = try MappedFile(path: path)
        self.path = path
        guard file.size >= 8, let base = file.base else { throw SafetensorsError.tooSmall(file: path, size: file.size) }
        let headerLength = base.loadUnaligned(as: UInt64.self).littleEndian
        if headerLength > UInt64(SafetensorsFile.headerLimit) {
            throw SafetensorsError.headerTooLarge(file: path, length: headerLength, limit: SafetensorsFile.headerLimit)
        }
        if headerLength > UInt64(file.size - 8) {
            throw SafetensorsError.headerPastEnd(file: path, length: headerLength, fileSize: file.size)
        }
        let n = Int(headerLength)
        dataStart = 8 + n
        let headerData = Data(bytes: base + 8, count: n)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw SafetensorsError.badJSON(file: path, reason: "\(error.localizedDescription)")
        }
        guard let dict = json as? [String: Any] else { throw SafetensorsError.badJSON(file: path, reason: "top level is not an object") }
        var meta: [String: String] = [:]
        var entries: [String: SafetensorsEntry] = [:]
        let dataSize = file.size - dataStart
        for (name, value) in dict {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw SafetensorsError.badJSON(file: path, reason: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw SafetensorsError.badJSON(file: path, reason: "__metadata__['\(k)'] is not a string") }
                    meta[k] = s
                }
                continue
            }
            entries[name] = try SafetensorsFile.parseEntry(name, value, file: path, dataSize: dataSize)
        }
        // No two spans may overlap (zero-length spans overlap nothing).
        let sorted = entries.values.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end {
            throw SafetensorsError.overlap(file: path, tensor: b.name, other: a.name)
        }
        self.entries = entries
        self.metadata = meta
    }

    private static func parseEntry(_ name: String, _ value: Any, file: String, dataSize: Int) throws -> SafetensorsEntry {
        guard let e = value as? [String: Any] else { throw SafetensorsError.badEntry(file: file, tensor: name, reason: "entry is not an object") }
        guard let dt = e["dtype"] as? String else { throw SafetensorsError.badEntry(file: file, tensor: name, reason: "missing dtype") }
        guard let dtype = SafetensorsDType(rawValue: dt) else { throw SafetensorsError.unknownDType(file: file, tensor: name, dtype: dt) }
        guard let shapeAny = e["shape"] as? [Any] else { throw SafetensorsError.badEntry(file: file, tensor: name, reason: "missing shape") }
        var shape: [Int] = []
        for d in shapeAny {
            guard let n = d as? NSNumber, n.int64Value >= 0, n.int64Value < (1 << 40), n.doubleValue == Double(n.int64Value) else {
                throw SafetensorsError.badEntry(file: file, tensor: name, reason: "shape \(shapeAny) is not a list of non-negative integers")
            }
            shape.append(n.intValue)
        }
        guard let offs = e["data_offsets"] as? [Any], offs.count == 2,
              let b = (offs[0] as? NSNumber)?.int64Value, let en = (offs[1] as? NSNumber)?.int64Value,
              b >= 0, en >= b else {
            throw SafetensorsError.badEntry(file: file, tensor: name, reason: "data_offsets must be [begin, end] with 0 ≤ begin ≤ end")
        }
        var elements = 1
        for d in shape {
            let (r, o) = elements.multipliedReportingOverflow(by: d)
            if o { throw SafetensorsError.badEntry(file: file, tensor: name, reason: "shape \(shape) overflows") }
            elements = r
        }
        let (need, o) = elements.multipliedReportingOverflow(by: dtype.size)
        if o || need != Int(en - b) {
            throw SafetensorsError.sizeMismatch(file: file, tensor: name, shape: shape, dtype: dt,
                                                expectedBytes: o ? Int.max : need, spanBytes: Int(en - b))
        }
        if en > Int64(dataSize) { throw SafetensorsError.spanPastEnd(file: file, tensor: name, end: Int(en), dataSize: dataSize) }
        return SafetensorsEntry(name: name, dtype: dtype, shape: shape, begin: Int(b), end: Int(en))
    }

    public func entry(_ name: String) throws -> SafetensorsEntry {
        guard let e = entries[name] else { throw SafetensorsError.missingTensor(file: path, tensor: name) }
        return e
    }

    /// Raw bytes of a tensor inside the mapping.
    public func rawPointer(_ e: SafetensorsEntry) -> UnsafeMutableRawPointer {
        file.base! + dataStart + e.begin
    }

    /// The tensor as Float32: a zero-copy view for aligned F32 data, else a converted copy.
    public func tensor(_ name: String) throws -> Tensor {
        let e = try entry(name)
        let n = e.shape.reduce(1, *)
        if n == 0 { return Tensor(zeros: e.shape) }
        let raw = rawPointer(e)
        switch e.dtype {
        case .f32:
            if Int(bitPattern: raw) % MemoryLayout<Float>.alignment == 0 {
                let p = raw.assumingMemoryBound(to: Float.self)
                return Tensor(storage: TensorStorage(borrowing: p, count: n, owner: file), shape: e.shape)
            }
            let t = Tensor(uninitialized: e.shape)
            UnsafeMutableRawPointer(t.dataPointer).copyMemory(from: raw, byteCount: n * 4)
            return t
        case .f16, .bf16:
            let t = Tensor(uninitialized: e.shape)
            let src = UnsafeMutablePointer<UInt16>.allocate(capacity: n)
            defer { src.deallocate() }
            UnsafeMutableRawPointer(src).copyMemory(from: raw, byteCount: n * 2)  // alignment-safe
            if e.dtype == .f16 { HalfConversion.fp16ToFloat(src, t.dataPointer, count: n) } else { HalfConversion.bf16ToFloat(src, t.dataPointer, count: n) }
            return t
        case .f64:
            let t = Tensor(uninitialized: e.shape)
            for i in 0..<n { t.dataPointer[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            return t
        case .i64:
            let t = Tensor(uninitialized: e.shape)
            for i in 0..<n { t.dataPointer[i] = Float(raw.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
            return t
        case .i32:
            let t = Tensor(uninitialized: e.shape)
            for i in 0..<n { t.dataPointer[i] = Float(raw.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
            return t
        default:
            throw SafetensorsError.unsupportedDType(file: path, tensor: name, dtype: e.dtype.rawValue)
        }
    }

    /// Integer tensors (token ids, labels) as Int.
    public func integers(_ name: String) throws -> [Int] {
        let e = try entry(name)
        let n = e.shape.reduce(1, *)
        let raw = rawPointer(e)
        switch e.dtype {
        case .i64: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .i32: return (0..<n).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        default: return try tensor(name).toArray().map { Int($0) }
        }
    }
}
