// Single-file Stable Diffusion checkpoints (the original LDM / A1111 layout:
// model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*) mapped to the
// diffusers module names, the inverse of what tools/fixtures/sd.py writes and diffusers'
// from_single_file reads. Configs default to SD 1.x; a different architecture shows up as a
// shape error naming the key.

import Foundation

public enum SingleFileCheckpoint {
    /// LDM UNet key (after "model.diffusion_model.") → diffusers key.
    static func unetKey(_ k: String, layers: Int, upHasAttention: [Bool]) -> String? {
        let p = k.split(separator: ".").map(String.init)
        let resnet: [String: String] = ["in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                                        "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"]
        func resnetRest(_ parts: ArraySlice<String>) -> String? {
            let a = Array(parts)
            guard !a.isEmpty else { return nil }
            if a.count >= 2, let r = resnet[a[0] + "." + a[1]] { return ([r] + a.dropFirst(2)).joined(separator: ".") }
            if let r = resnet[a[0]] { return ([r] + a.dropFirst(1)).joined(separator: ".") }
            return nil
        }
        let last = p.last ?? ""
        // Every branch checks the key is long enough before it indexes (short or odd keys in a
        // hostile file map to nothing, and the missing weight is then reported by name).
        switch p.first {
        case "time_embed" where p.count >= 3, "out" where p.count >= 3: break
        case "time_embed", "out": return nil
        default: break
        }
        switch p.first {
        case "time_embed": return p[1] == "0" ? "time_embedding.linear_1.\(last)" : p[1] == "2" ? "time_embedding.linear_2.\(last)" : nil
        case "out": return p[1] == "0" ? "conv_norm_out.\(last)" : p[1] == "2" ? "conv_out.\(last)" : nil
        case "input_blocks":
            guard p.count >= 4, let i = Int(p[1]) else { return nil }
            if i == 0 { return "conv_in.\(last)" }
            let b = (i - 1) / (layers + 1), j = (i - 1) % (layers + 1)
            if j == layers { return p[3] == "op" ? "down_blocks.\(b).downsamplers.0.conv.\(last)" : nil }
            if p[2] == "0" { return resnetRest(p[3...]).map { "down_blocks.\(b).resnets.\(j).\($0)" } }
            return "down_blocks.\(b).attentions.\(j)." + p[3...].joined(separator: ".")
        case "middle_block":
            guard p.count >= 3 else { return nil }
            switch p[1] {
            case "0": return resnetRest(p[2...]).map { "mid_block.resnets.0.\($0)" }
            case "2": return resnetRest(p[2...]).map { "mid_block.resnets.1.\($0)" }
            case "1": return "mid_block.attentions.0." + p[2...].joined(separator: ".")
            default: return nil
            }
        case "output_blocks":
            guard p.count >= 4, let i = Int(p[1]) else { return nil }
            let b = i / (layers + 1), j = i % (layers + 1)
            if p[2] == "0" { return resnetRest(p[3...]).map { "up_blocks.\(b).resnets.\(j).\($0)" } }
            if p[3] == "conv" { return "up_blocks.\(b).upsamplers.0.conv.\(last)" }
            if p[2] == "1" && b < upHasAttention.count && upHasAttention[b] { return "up_blocks.\(b).attentions.\(j)." + p[3...].joined(separator: ".") }
            return nil
        default: return nil
        }
    }

    /// LDM VAE key (after "first_stage_model.") → diffusers key.
    static func vaeKey(_ k: String, levels: Int) -> String? {
        var p = k.split(separator: ".").map(String.init)
        guard p.count >= 2 else { return nil }
        if p[0] == "quant_conv" || p[0] == "post_quant_conv" { return k }
        let side = p[0]
        p = p.map { $0 == "nin_shortcut" ? "conv_shortcut" : $0 == "norm_out" ? "conv_norm_out" : $0 }
        let last = p.last!
        switch p[1] {
        case "down":
            guard p.count >= 5 else { return nil }
            if p[3] == "block" { return "\(side).down_blocks.\(p[2]).resnets." + p[4...].joined(separator: ".") }
            if p[3] == "downsample" { return "\(side).down_blocks.\(p[2]).downsamplers.0.conv.\(last)" }
            return nil
        case "up":
            guard p.count >= 5, let i = Int(p[2]) else { return nil }
            let b = levels - 1 - i
            if p[3] == "block" { return "\(side).up_blocks.\(b).resnets." + p[4...].joined(separator: ".") }
            if p[3] == "upsample" { return "\(side).up_blocks.\(b).upsamplers.0.conv.\(last)" }
            return nil
        case "mid":
            guard p.count >= 4 else { return nil }
            switch p[2] {
            case "block_1": return "\(side).mid_block.resnets.0." + p[3...].joined(separator: ".")
            case "block_2": return "\(side).mid_block.resnets.1." + p[3...].joined(separator: ".")
            case "attn_1":
                let names = ["norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"]
                return names[p[3]].map { "\(side).mid_block.attentions.0.\($0).\(last)" }
            default: return nil
            }
        default: return p.joined(separator: ".")   // conv_in, conv_out, conv_norm_out
        }
    }

    /// Loads the three models from one file; the tokenizer comes from `tokenizerDirectory`
    /// (single files do not carry one; SD 1.x all use the same CLIP vocabulary).
    public static func load(path: String, tokenizerDirectory: String,
                            unet unetConfig: UNetConfig = UNetConfig(), vae vaeConfig: VAEConfig = VAEConfig(),
                            textEncoder textConfig: CLIPTextConfig = CLIPTextConfig(),
                            scheduler: SchedulerConfig = .stableDiffusion1) throws -> StableDiffusionPipeline {
        if !path.hasSuffix(".safetensors") {
            throw WeightsError.unsupported(file: path, reason: "only .safetensors checkpoints are loaded; pickle .ckpt/.pt files are refused because loading them can run arbitrary code (convert with `safetensors.torch.save_file(torch.load(path, weights_only=True)[\"state_dict\"], out)`)")
        }
        let file = try SafetensorsFile(path: path)
        guard file.entries.keys.contains(where: { $0.hasPrefix("model.diffusion_model.") }) else {
            throw WeightsError.unsupported(file: path, reason: "no model.diffusion_model.* tensors: not a single-file Stable Diffusion checkpoint (a LoRA or a component file?)")
        }
        let upAttn = unetConfig.upBlockTypes.map { $0 == "CrossAttnUpBlock2D" }
        let unetReader = WeightReader(files: [file]) { k in
            guard k.hasPrefix("model.diffusion_model.") else { return nil }
            return unetKey(String(k.dropFirst("model.diffusion_model.".count)), layers: unetConfig.layersPerBlock, upHasAttention: upAttn)
        }
        let vaeReader = WeightReader(files: [file]) { k in
            guard k.hasPrefix("first_stage_model.") else { return nil }
            return vaeKey(String(k.dropFirst("first_stage_model.".count)), levels: vaeConfig.blockOutChannels.count)
        }
        let textReader = WeightReader(files: [file]) { k in
            k.hasPrefix("cond_stage_model.transformer.") ? String(k.dropFirst("cond_stage_model.transformer.".count)) : nil
        }
        return StableDiffusionPipeline(
            tokenizer: try CLIPTokenizer(directory: tokenizerDirectory),
            textEncoder: try CLIPTextModel(config: textConfig, weights: textReader),
            unet: try UNet2DConditionModel(config: unetConfig, weights: unetReader, configFile: path),
            vae: try AutoencoderKL(config: vaeConfig, weights: vaeReader),
            schedulerConfig: scheduler, name: ((path as NSString).lastPathComponent as NSString).deletingPathExtension)
    }
}
