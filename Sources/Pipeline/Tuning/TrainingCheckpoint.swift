// Checkpoints of a training run, crash-safe as a unit. A checkpoint is a folder
// `checkpoints/<name>/` holding `weights.safetensors` (named fp32 tensors), `optimizer.safetensors`
// (AdamW moments, `m.<name>` / `v.<name>`) and `state.json` (the run's own Codable state). The
// folder is written completely (every file fsynced), then `checkpoints/latest` is replaced
// atomically with its name; only then are older folders removed. A crash at any point leaves
// `latest` naming a complete checkpoint.

import Foundation

public enum CheckpointError: Error, CustomStringConvertible {
    case none(directory: String)
    case unreadable(path: String, reason: String)
    case mismatch(path: String, reason: String)

    public var description: String {
        switch self {
        case .none(let d): return "\(d): no checkpoint to resume from (checkpoints/latest is missing); start without --resume"
        case let .unreadable(p, r): return "\(p): checkpoint unreadable: \(r)"
        case let .mismatch(p, r): return "\(p): checkpoint does not match this run: \(r)"
        }
    }
}

/// A trainer's checkpoint state.json: `version` is the format it was written in.
public protocol VersionedTrainingState: Decodable {
    var version: Int { get }
    static var supportedVersion: Int { get }
}

extension VersionedTrainingState {
    public static var supportedVersion: Int { 1 }
}

public struct TrainingCheckpoint {
    public let root: String
    public init(directory: String) { root = directory + "/checkpoints" }

    /// Writes a checkpoint named `name` and makes it the latest; keeps the newest `keep`.
    public func save<S: Encodable>(name: String, tensors: [String: Tensor], optimizer: AdamW?, optimizerNames: [String],
                                   state: S, keep: Int = 2) throws {
        let fm = FileManager.default
        // Never rewrite the folder `latest` names (a crash mid-write would leave it partial).
        let name = latest.map { ($0 as NSString).lastPathComponent } == name ? name + "-again" : name
        let dir = root + "/" + name
        try? fm.removeItem(atPath: dir)   // a partial folder of the same name from a crash
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try SafetensorsWriter.write(tensors, to: dir + "/weights.safetensors")
        if let optimizer {
            var moments: [String: Tensor] = [:]
            for (i, n) in optimizerNames.enumerated() { moments["m." + n] = optimizer.m[i]; moments["v." + n] = optimizer.v[i] }
            try SafetensorsWriter.write(moments, to: dir + "/optimizer.safetensors", metadata: ["step": String(optimizer.stepCount)])
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(state), to: dir + "/state.json")
        try AtomicFile.write(Data((name + "\n").utf8), to: root + "/latest")
        // Older checkpoints go only after `latest` points at the new one.
        let all = ((try? fm.contentsOfDirectory(atPath: root)) ?? []).filter { $0 != "latest" && !$0.hasPrefix(".") && $0 != name }
        let byAge = all.sorted { (modified(root + "/" + $0)) < (modified(root + "/" + $1)) }
        for old in byAge.dropLast(max(0, keep - 1)) { try? fm.removeItem(atPath: root + "/" + old) }
    }

    private func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }

    /// The folder `latest` names, if any.
    public var latest: String? {
        guard let d = FileManager.default.contents(atPath: root + "/latest"),
              let name = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !name.isEmpty else { return nil }
        return root + "/" + name
    }

    /// Loads the latest checkpoint: its state, tensors, and optimizer moments (if saved).
    public func load<S: Decodable>(_ type: S.Type) throws -> (state: S, tensors: SafetensorsFile, optimizer: SafetensorsFile?) {
        guard let dir = latest else { throw CheckpointError.none(directory: (root as NSString).deletingLastPathComponent) }
        guard let data = FileManager.default.contents(atPath: dir + "/state.json") else {
            throw CheckpointError.unreadable(path: dir + "/state.json", reason: "missing")
        }
        let state: S
        do { state = try JSONDecoder().decode(S.self, from: data) } catch {
            throw CheckpointError.unreadable(path: dir + "/state.json", reason: "\(error)")
        }
        let weights = try SafetensorsFile(path: dir + "/weights.safetensors")
        let opt = FileManager.default.fileExists(atPath: dir + "/optimizer.safetensors") ? try SafetensorsFile(path: dir + "/optimizer.safetensors") : nil
        return (state, weights, opt)
    }

    /// `load` for run states that carry a format version (every trainer's): a state written by
    /// a newer troupe is refused with the checkpoint's path.
    public func load<S: VersionedTrainingState>(versioned type: S.Type) throws -> (state: S, tensors: SafetensorsFile, optimizer: SafetensorsFile?) {
        let loaded = try load(type)
        guard loaded.state.version == S.supportedVersion else {
            throw CheckpointError.mismatch(path: latest ?? root, reason: "state version \(loaded.state.version) is newer than this troupe")
        }
        return loaded
    }

    /// Copies saved values into `tensors` (by name; every name must be present, same shape).
    public static func restore(_ tensors: [String: Tensor], from file: SafetensorsFile) throws {
        for (name, t) in tensors {
            guard let e = try? file.entry(name) else { throw CheckpointError.mismatch(path: file.path, reason: "tensor '\(name)' is missing") }
            guard e.shape == t.shape else { throw CheckpointError.mismatch(path: file.path, reason: "'\(name)' has shape \(e.shape), the run has \(t.shape)") }
            t.assign(try file.tensor(name))
        }
    }

    /// Restores AdamW moments saved under `optimizerNames`.
    public static func restore(_ optimizer: AdamW, names: [String], from file: SafetensorsFile) throws {
        guard let step = file.metadata["step"].flatMap(Int.init) else { throw CheckpointError.mismatch(path: file.path, reason: "no optimizer step") }
        var m: [Tensor] = [], v: [Tensor] = []
        for (i, n) in names.enumerated() {
            for (prefix, into) in [("m.", 0), ("v.", 1)] {
                guard let e = try? file.entry(prefix + n), e.shape == optimizer.parameters[i].shape else {
                    throw CheckpointError.mismatch(path: file.path, reason: "optimizer state for '\(n)' missing or of another shape")
                }
                if into == 0 { m.append(try file.tensor(prefix + n)) } else { v.append(try file.tensor(prefix + n)) }
            }
        }
        optimizer.restore(step: step, m: m, v: v)
    }
}
