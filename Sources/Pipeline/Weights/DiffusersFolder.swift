// A diffusers pipeline folder (model_index.json; text_encoder/, tokenizer/, unet/, vae/,
// scheduler/). Each component's weights are `<name>.safetensors` or the `<name>.fp16.safetensors`
// variant (sharded `*.safetensors.index.json` too). Pickle checkpoints (.bin/.ckpt) are refused:
// loading them runs arbitrary code.

import FileSafety
import Foundation

public struct DiffusersFolder {
    public let path: String

    public init(path: String) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw WeightsError.missingComponent(path: path, what: "model folder (not found or not a directory)")
        }
        guard FileManager.default.fileExists(atPath: path + "/model_index.json") else {
            throw WeightsError.missingComponent(path: path, what: "model_index.json: not a diffusers pipeline folder")
        }
        self.path = path
    }

    public func componentPath(_ component: String) -> String { path + "/" + component }

    /// Whether `<component>/<file>` exists (an absent config means the defaults; a present one
    /// that does not parse is an error, never a silent fallback).
    public func hasConfig(_ component: String, file: String = "config.json") -> Bool {
        FileManager.default.fileExists(atPath: componentPath(component) + "/" + file)
    }

    /// Decodes `<component>/<file>`.
    public func config<T: Decodable>(_ type: T.Type, _ component: String, file: String = "config.json") throws -> T {
        let p = componentPath(component) + "/" + file
        if let why = RegularFile.problem(p) { throw WeightsError.badConfig(file: p, reason: why) }
        guard let data = FileManager.default.contents(atPath: p) else { throw WeightsError.missingComponent(path: p, what: "config file") }
        do { return try JSONDecoder().decode(T.self, from: ConfigDecoding.nonFiniteAsNull(data)) } catch {
            throw WeightsError.badConfig(file: p, reason: ConfigDecoding.describe(error, data: data))
        }
    }

    /// The safetensors files of a component, preferring full precision, then the fp16 variant.
    public func weightFiles(_ component: String, baseName: String) throws -> [String] {
        let dir = componentPath(component)
        let fm = FileManager.default
        for name in [baseName, baseName + ".fp16"] {
            let single = dir + "/" + name + ".safetensors"
            if fm.fileExists(atPath: single) { return [single] }
            let index = dir + "/" + name + ".safetensors.index.json"
            if let data = fm.contents(atPath: index),
               let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let map = obj["weight_map"] as? [String: String] {
                // Shard names are plain file names in the component folder: an index may not
                // send the loader anywhere else ("../", absolute paths, sub-folders).
                for shard in Set(map.values) where shard.isEmpty || shard.contains("/") || shard.contains("\\") || shard == "." || shard == ".."
                    || !shard.hasSuffix(".safetensors") {
                    throw WeightsError.badConfig(file: index, reason: "weight_map names '\(shard)'; shards must be .safetensors files in \(dir)")
                }
                return Set(map.values).sorted().map { dir + "/" + $0 }
            }
        }
        let pickles = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".bin") || $0.hasSuffix(".ckpt") || $0.hasSuffix(".pt") }
        if let p = pickles.first {
            throw WeightsError.unsupported(file: dir + "/" + p, reason: "pickle checkpoints are refused because loading them can run arbitrary code; convert to safetensors first (e.g. in Python: `from safetensors.torch import save_file; save_file(torch.load(path, weights_only=True), out)`, or diffusers' `save_pretrained(..., safe_serialization=True)`)")
        }
        throw WeightsError.missingComponent(path: dir, what: "\(baseName).safetensors (or its .fp16 variant)")
    }

    public func reader(_ component: String, baseName: String) throws -> WeightReader {
        try WeightReader(paths: weightFiles(component, baseName: baseName))
    }

    public func textEncoder() throws -> CLIPTextModel {
        try CLIPTextModel(config: config(CLIPTextConfig.self, "text_encoder"), weights: reader("text_encoder", baseName: "model"),
                          configFile: componentPath("text_encoder") + "/config.json")
    }

    public func unet() throws -> UNet2DConditionModel {
        try UNet2DConditionModel(config: config(UNetConfig.self, "unet"), weights: reader("unet", baseName: "diffusion_pytorch_model"),
                                 configFile: componentPath("unet") + "/config.json")
    }

    public func vae() throws -> AutoencoderKL {
        try AutoencoderKL(config: config(VAEConfig.self, "vae"), weights: reader("vae", baseName: "diffusion_pytorch_model"),
                          configFile: componentPath("vae") + "/config.json")
    }

    public func tokenizer() throws -> CLIPTokenizer { try CLIPTokenizer(directory: componentPath("tokenizer")) }
}
