// Every way a safetensors file can be unusable, each naming the file, the tensor when there
// is one, and what is wrong.

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(file: String, reason: String)
    case tooSmall(file: String, size: Int)
    case headerTooLarge(file: String, length: UInt64, limit: Int)
    case headerPastEnd(file: String, length: UInt64, fileSize: Int)
    case badJSON(file: String, reason: String)
    case badEntry(file: String, tensor: String, reason: String)
    case unknownDType(file: String, tensor: String, dtype: String)
    case sizeMismatch(file: String, tensor: String, shape: [Int], dtype: String, expectedBytes: Int, spanBytes: Int)
    case spanPastEnd(file: String, tensor: String, end: Int, dataSize: Int)
    case overlap(file: String, tensor: String, other: String)
    case missingTensor(file: String, tensor: String)
    case unsupportedDType(file: String, tensor: String, dtype: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(f, r): return "\(f): cannot open (\(r))"
        case let .tooSmall(f, s): return "\(f): \(s) bytes is too small for a safetensors file (needs an 8-byte header length); the file is truncated or not safetensors"
        case let .headerTooLarge(f, l, lim): return "\(f): header length \(l) exceeds the \(lim)-byte limit; the file is corrupt or not safetensors"
        case let .headerPastEnd(f, l, s): return "\(f): header length \(l) runs past the end of the \(s)-byte file; the file is truncated"
        case let .badJSON(f, r): return "\(f): header is not valid safetensors JSON (\(r))"
        case let .badEntry(f, t, r): return "\(f): tensor '\(t)': \(r)"
        case let .unknownDType(f, t, d): return "\(f): tensor '\(t)' has unknown dtype '\(d)'"
        case let .sizeMismatch(f, t, sh, d, e, s): return "\(f): tensor '\(t)' of shape \(sh) and dtype \(d) needs \(e) bytes but its span holds \(s)"
        case let .spanPastEnd(f, t, e, s): return "\(f): tensor '\(t)' ends at byte \(e) of a \(s)-byte data section; the file is truncated"
        case let .overlap(f, t, o): return "\(f): tensors '\(t)' and '\(o)' overlap in the data section"
        case let .missingTensor(f, t): return "\(f): no tensor named '\(t)'"
        case let .unsupportedDType(f, t, d): return "\(f): tensor '\(t)' has dtype \(d), which cannot be read as floats"
        case let .writeFailed(f, r): return "\(f): write failed (\(r))"
        }
    }
}
