// Writes a trained model as a diffusers pipeline folder (model_index.json, scheduler/,
// text_encoder/, tokenizer/, unet/, vae/) with fp16 safetensors: the layout `DiffusersFolder`
// reads, and that diffusers' StableDiffusionPipeline.from_pretrained loads. Config files carry
// the class names and block types diffusers/transformers need beyond the fields Troupe reads.

import Foundation

public enum DiffusersExport {
    public static func write(to folder: String, architecture a: BaseModelArchitecture, scalingFactor: Float,
                             textEncoder: [String: Tensor], unet: [String: Tensor], vae: [String: Tensor],
                             tokenizerDirectory: String) throws {
        let fm = FileManager.default
        for c in ["scheduler", "text_encoder", "tokenizer", "unet", "vae"] {
            try fm.createDirectory(atPath: folder + "/" + c, withIntermediateDirectories: true)
        }
        func json(_ object: Any, _ path: String) throws {
            try AtomicFile.write(try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), to: folder + "/" + path)
        }
        func dictionary<T: Encodable>(_ value: T) throws -> [String: Any] {
            try JSONSerialization.jsonObject(with: JSONEncoder().encode(value)) as! [String: Any]
        }
        try json(["_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.42.1",
                  "feature_extractor": [NSNull(), NSNull()], "safety_checker": [NSNull(), NSNull()], "requires_safety_checker": false,
                  "image_encoder": [NSNull(), NSNull()],
                  "scheduler": ["diffusers", a.scheduler.className ?? "DPMSolverMultistepScheduler"],
                  "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                  "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]] as [String: Any],
                 "model_index.json")
        try json(try dictionary(a.scheduler), "scheduler/scheduler_config.json")
        try json(try dictionary(a.recommended), SamplingDefaults.fileName)

        var te = try dictionary(a.textEncoder)
        te["architectures"] = ["CLIPTextModel"]; te["model_type"] = "clip_text_model"
        te["bos_token_id"] = 49406; te["eos_token_id"] = 49407; te["pad_token_id"] = 49407
        te["projection_dim"] = a.textEncoder.hiddenSize; te["torch_dtype"] = "float16"
        try json(te, "text_encoder/config.json")

        var u = try dictionary(a.unet)
        u["_class_name"] = "UNet2DConditionModel"; u["_diffusers_version"] = "0.42.1"
        try json(u, "unet/config.json")

        var v = try dictionary(a.vae)
        v["_class_name"] = "AutoencoderKL"; v["_diffusers_version"] = "0.42.1"; v["act_fn"] = "silu"
        v["down_block_types"] = Array(repeating: "DownEncoderBlock2D", count: a.vae.blockOutChannels.count)
        v["up_block_types"] = Array(repeating: "UpDecoderBlock2D", count: a.vae.blockOutChannels.count)
        v["scaling_factor"] = Double(scalingFactor)
        try json(v, "vae/config.json")

        try SafetensorsWriter.write(textEncoder, to: folder + "/text_encoder/model.safetensors", dtype: .f16, metadata: ["format": "pt"])
        try SafetensorsWriter.write(unet, to: folder + "/unet/diffusion_pytorch_model.safetensors", dtype: .f16, metadata: ["format": "pt"])
        try SafetensorsWriter.write(vae, to: folder + "/vae/diffusion_pytorch_model.safetensors", dtype: .f16, metadata: ["format": "pt"])

        for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            let src = tokenizerDirectory + "/" + f
            guard let d = fm.contents(atPath: src) else {
                if f == "vocab.json" || f == "merges.txt" { throw WeightsError.missingComponent(path: src, what: "tokenizer file") }
                continue
            }
            try AtomicFile.write(d, to: folder + "/tokenizer/" + f)
        }
    }
}
