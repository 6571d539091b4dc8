// Tensors by key out of one or more safetensors files, checked against the shape the model
// expects. A missing key or wrong shape names the key, the expected and found shapes, and the
// file, so a user with a mismatched checkpoint knows exactly what is wrong.

import Foundation

public enum WeightsError: Error, CustomStringConvertible, Equatable {
    case missingKey(key: String, files: [String])
    case shapeMismatch(key: String, expected: [Int], found: [Int], file: String)
    case unsupported(file: String, reason: String)
    case missingComponent(path: String, what: String)
    case badConfig(file: String, reason: String)

    public var description: String {
        switch self {
        case let .missingKey(k, f): return "weight '\(k)' not found in \(f.joined(separator: ", "))"
        case let .shapeMismatch(k, e, found, f): return "\(f): weight '\(k)' has shape \(found), the model expects \(e); the checkpoint does not match this model's config"
        case let .unsupported(f, r): return "\(f): \(r)"
        case let .missingComponent(p, w): return "\(p): missing \(w)"
        case let .badConfig(f, r): return "\(f): \(r)"
        }
    }
}

public final class WeightReader: @unchecked Sendable {
    public let files: [SafetensorsFile]
    /// model key → (file, key in that file)
    private var owner: [String: (SafetensorsFile, String)] = [:]

    /// `rename` maps a stored key to the model's key (nil drops it), for checkpoints saved
    /// under other names (single-file LDM layouts).
    public init(files: [SafetensorsFile], rename: (String) -> String? = { $0 }) {
        self.files = files
        for f in files {
            for n in f.entries.keys.sorted() {
                guard let m = rename(n), owner[m] == nil else { continue }
                owner[m] = (f, n)
            }
        }
    }

    public convenience init(paths: [String]) throws {
        try self.init(files: paths.map { try SafetensorsFile(path: $0) })
    }

    /// Deterministic random weights for any key asked (benchmarks of model shapes without
    /// a checkpoint): norm scales 1, biases 0, other tensors uniform in ±1/√fan_in.
    public init(randomSeed: UInt64) {
        files = []
        random = SplitMixRandom(seed: randomSeed)
    }
    private var random: SplitMixRandom?

    /// Every tensor a random-weights reader handed out, by key, in the order asked: the
    /// parameters of a model being trained from scratch (one tensor object per key, so
    /// gradients and optimiser updates reach the model).
    public private(set) var issued: [(key: String, tensor: Tensor)] = []

    public var keys: [String] { Array(owner.keys) }

    /// Linear layers built from this reader, by module path ("…attn2.to_q"): where LoRA
    /// adapters attach.
    public private(set) var linears: [String: Linear] = [:]
    /// Conv layers by module path, likewise.
    public private(set) var convs: [String: Conv2d] = [:]
    func register(_ layer: Linear, at path: String) { linears[path] = layer }
    func register(_ layer: Conv2d, at path: String) { convs[path] = layer }
    public func has(_ key: String) -> Bool { owner[key] != nil }

    /// The tensor stored under `key`, which must have `shape`.
    public func tensor(_ key: String, shape: [Int]) throws -> Tensor {
        if random != nil {
            let isNorm = key.contains("norm")
            let t: Tensor
            if shape.count == 1 { t = Tensor(filled: isNorm && key.hasSuffix("weight") ? 1 : 0, shape: shape) } else {
                let bound = 1 / Float(shape.dropFirst().reduce(1, *)).squareRoot()
                t = Tensor.rand(shape, low: -bound, high: bound, using: &random!)
            }
            issued.append((key, t))
            return t
        }
        guard let (f, stored) = owner[key] else { throw WeightsError.missingKey(key: key, files: files.map(\.path)) }
        let e = try f.entry(stored)
        if e.shape == shape { return try f.tensor(stored) }
        // A 1×1 conv stored where the model has a linear layer (LDM's VAE attention): same
        // memory, trailing unit dims.
        if e.shape.count > shape.count, Array(e.shape.prefix(shape.count)) == shape, e.shape.dropFirst(shape.count).allSatisfy({ $0 == 1 }) {
            return try f.tensor(stored).reshaped(shape)
        }
        throw WeightsError.shapeMismatch(key: stored, expected: shape, found: e.shape, file: f.path)
    }

    /// As `tensor`, but half-precision data stays half in memory until used (see Weight).
    public func weight(_ key: String, shape: [Int]) throws -> Weight {
        if random == nil, let (f, stored) = owner[key], let e = try? f.entry(stored), e.dtype == .f16 || e.dtype == .bf16 {
            let ok = e.shape == shape || (e.shape.count > shape.count && Array(e.shape.prefix(shape.count)) == shape
                                           && e.shape.dropFirst(shape.count).allSatisfy { $0 == 1 })
            guard ok else { throw WeightsError.shapeMismatch(key: stored, expected: shape, found: e.shape, file: f.path) }
            return Weight(file: f, key: stored, shape: shape)
        }
        return Weight(try tensor(key, shape: shape))
    }

    /// Shape of `key`, if present (used to infer optional structure).
    public func shape(_ key: String) -> [Int]? { owner[key].flatMap { try? $0.0.entry($0.1).shape } }

    public func scope(_ prefix: String) -> WeightScope { WeightScope(reader: self, prefix: prefix) }
}

/// A reader seen through a key prefix ("down_blocks.0.resnets.1.").
public struct WeightScope {
    public let reader: WeightReader
    public let prefix: String

    public func callAsFunction(_ name: String) -> WeightScope { WeightScope(reader: reader, prefix: prefix + name + ".") }
    public func tensor(_ name: String, _ shape: [Int]) throws -> Tensor { try reader.tensor(prefix + name, shape: shape) }
    public func weight(_ name: String, _ shape: [Int]) throws -> Weight { try reader.weight(prefix + name, shape: shape) }
    public func has(_ name: String) -> Bool { reader.has(prefix + name) }
}
