// Finds the model a command names: a diffusers folder, or (omitted) the embedded default
// model models/troupe-mini beside the installation or in the source tree.

import Foundation
import Pipeline

enum ModelLocator {
    static let defaultModelName = "troupe-mini"

    /// Candidate `models/` folders: $TROUPE_MODELS, next to the executable (installed or
    /// .build/<config>/), and the source tree this binary was built from.
    static var modelRoots: [String] {
        var roots: [String] = []
        if let env = ProcessInfo.processInfo.environment["TROUPE_MODELS"] { roots.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        roots.append(exe.appendingPathComponent("models").path)
        roots.append(exe.appendingPathComponent("../share/troupe/models").standardized.path)
        roots.append(exe.appendingPathComponent("../../models").standardized.path)
        roots.append(URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../models").standardized.path)
        return roots
    }

    /// `models/<relative>` in the first root that has `<relative>/<marker>` (or the file itself).
    static func locate(_ relative: String, marker: String? = nil) -> String? {
        modelRoots.map { $0 + "/" + relative }.first { path in FileManager.default.fileExists(atPath: marker.map { path + "/" + $0 } ?? path) }
    }

    static func resolve(_ model: String?) throws -> (path: String, name: String) {
        if let model {
            var st = stat()
            guard stat(model, &st) == 0 else {
                // Say what is wrong: a permission problem is not a missing folder.
                let why = errno == EACCES ? "permission denied (check the folder's and its parents' permissions)"
                                          : errno == ENOENT ? "not found (give a diffusers folder or a .safetensors checkpoint)" : String(cString: strerror(errno))
                throw StudioError.badInput("model '\(model)': \(why)")
            }
            return (model, (model as NSString).lastPathComponent)
        }
        if let p = locate(defaultModelName, marker: "model_index.json") { return (p, defaultModelName) }
        throw StudioError.badInput("the embedded model \(defaultModelName) is not in this checkout yet (it is trained by `troupe train-base`); pass --model DIR with a diffusers SD 1.x folder. Looked in: \(modelRoots.joined(separator: ", "))")
    }

    /// The embedded CLIP tokenizer (models/clip-tokenizer), for what needs one outside a
    /// model folder: single-file checkpoints and `train-base`.
    static func clipTokenizer(for what: String) throws -> String {
        guard let tok = locate("clip-tokenizer", marker: "vocab.json") else {
            throw StudioError.badInput("\(what) need the CLIP tokenizer (models/clip-tokenizer), not found in \(modelRoots.joined(separator: ", "))")
        }
        return tok
    }

    static func isFolder(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    /// The sampling defaults `model` recommends (troupe.json in a model folder; a single-file
    /// checkpoint has none), without loading its weights.
    static func samplingDefaults(_ model: String?) throws -> SamplingDefaults {
        let (path, _) = try resolve(model)
        guard isFolder(path) else { return .standard }
        do { return try SamplingDefaults.load(folder: path) } catch { throw StudioError.wrap(error) }
    }

    static func loadPipeline(_ model: String?) throws -> (StableDiffusionPipeline, String) {
        let (path, name) = try resolve(model)
        do {
            if isFolder(path) {
                return (try StableDiffusionPipeline(folder: DiffusersFolder(path: path)), name)
            }
            return (try SingleFileCheckpoint.load(path: path, tokenizerDirectory: clipTokenizer(for: "single-file checkpoints")), name)
        } catch { throw StudioError.wrap(error) }
    }

    /// A World judge (`train-judge` output), or a clear error naming the file.
    static func loadJudge(_ path: String) throws -> AttributeClassifier {
        do { return try AttributeClassifier(weights: WeightReader(paths: [path])) } catch {
            throw StudioError.badInput("judge \(path): \(error)")
        }
    }

    /// Where the shipped identity encoder, identity adapter and training and evaluation judges live under
    /// models/ (one name each, for every command that looks for them).
    static let identityEncoderFile = "identity/encoder.safetensors"
    static let identityAdapterFile = "identity/adapter.safetensors"
    static let trainingJudgeFile = "judges/attributes-train.safetensors"
    static let evaluationJudgeFile = "judges/attributes-eval.safetensors"

    /// The shipped IdentityEncoder (nil when it is not installed); a corrupt file is an error.
    static func identityEncoder() throws -> IdentityEncoder? {
        guard let path = locate(identityEncoderFile) else { return nil }
        do { return try IdentityEncoder(weights: WeightReader(paths: [path])) } catch {
            throw StudioError.badInput("identity encoder \(path): \(error)")
        }
    }

    /// The shipped training judge (nil when it is not installed): the only judge a loss may use.
    static func trainingJudge() throws -> AttributeClassifier? {
        try locate(trainingJudgeFile).map(loadJudge)
    }
}
