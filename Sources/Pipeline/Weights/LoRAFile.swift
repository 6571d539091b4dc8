// LoRA files as A1111 and diffusers users have them, applied as adapters on the loaded
// model's layers (not merged, so scales can change between generations):
//   kohya:  lora_unet_<path with _>.lora_down.weight / .lora_up.weight / .alpha
//           lora_te_<text model path with _>…            (A1111, kohya-ss sd-scripts)
//   PEFT:   unet.<path>.lora_A.weight / .lora_B.weight [/ .alpha]
//           text_encoder.<path>…                         (diffusers, peft)
//   old diffusers: unet.<path>.lora.down.weight / .lora.up.weight
// Effective scale = multiplier · alpha / rank (alpha = rank when absent), as A1111 applies it.
// Linear layers take [r, in]/[out, r] pairs, convs (LoCon) [r, in, k, k]/[out, r, 1, 1].
// A stage tuner's file may also carry its pivotal text offset (SummaryOffset.key, not a LoRA
// key), read into `summaryOffset`.

import Foundation

public struct LoRAFile {
    public struct Pair { public var down: Tensor?; public var up: Tensor?; public var alpha: Float? }

    public let path: String
    /// (component, diffusers module path) → pair; component is "unet" or "text_encoder".
    public let pairs: [String: Pair]
    /// The stage tuners' pivotal offset, when the file carries one (SummaryOffset).
    public let summaryOffset: SummaryOffset?

    public init(path: String) throws {
        self.path = path
        let f = try SafetensorsFile(path: path)
        var pairs: [String: Pair] = [:]
        var unknown: [String] = []
        for key in f.names where key != SummaryOffset.key {
            guard let (target, part) = LoRAFile.parse(key) else { unknown.append(key); continue }
            var p = pairs[target] ?? Pair()
            switch part {
            case "down": p.down = try f.tensor(key).clone()
            case "up": p.up = try f.tensor(key).clone()
            default: p.alpha = try f.tensor(key).toArray().first
            }
            pairs[target] = p
        }
        if !unknown.isEmpty {
            throw WeightsError.unsupported(file: path, reason: "\(unknown.count) keys are not LoRA weights in the kohya or PEFT layout (first: '\(unknown[0])')")
        }
        for (t, p) in pairs where p.down == nil || p.up == nil {
            throw WeightsError.unsupported(file: path, reason: "LoRA layer '\(t)' lacks its \(p.down == nil ? "down (A)" : "up (B)") weight")
        }
        self.pairs = pairs
        summaryOffset = try SummaryOffset.read(from: f)
    }

    /// "<component>|<path with _ or .>" and which part a key holds.
    static func parse(_ key: String) -> (String, String)? {
        let suffixes: [(String, String)] = [(".lora_down.weight", "down"), (".lora_up.weight", "up"), (".lora_A.weight", "down"),
                                            (".lora_B.weight", "up"), (".lora.down.weight", "down"), (".lora.up.weight", "up"), (".alpha", "alpha")]
        guard let (suffix, part) = suffixes.first(where: { key.hasSuffix($0.0) }) else { return nil }
        let stem = String(key.dropLast(suffix.count))
        for (prefix, component) in [("lora_unet_", "unet"), ("lora_te_", "text_encoder"), ("unet.", "unet"), ("text_encoder.", "text_encoder")] where stem.hasPrefix(prefix) {
            return (component + "|" + stem.dropFirst(prefix.count), part)
        }
        return nil
    }

    /// Attaches every pair to its layer as one LoRASet that can be rescaled and detached.
    public func attach(multiplier: Float, unet: UNet2DConditionModel, textEncoder: CLIPTextModel) throws -> LoRASet {
        let id = "lora-\(UInt64.random(in: 0...UInt64.max))"
        try apply(multiplier: 1, unet: unet, textEncoder: textEncoder, owner: id)
        let set = LoRASet(id: id, name: path, unet: unet, textEncoder: textEncoder)
        set.rescale(multiplier)
        return set
    }

    /// Attaches every pair to its layer in `unet` / `textEncoder` with `multiplier`; returns
    /// how many layers got an adapter. A pair whose layer is not in the model is an error.
    @discardableResult
    public func apply(multiplier: Float, unet: UNet2DConditionModel, textEncoder: CLIPTextModel, owner: String = "") throws -> Int {
        func index(_ linears: [String: Linear], _ convs: [String: Conv2d]) -> [String: Either] {
            var out: [String: Either] = [:]
            for (k, v) in linears { for n in LoRAFile.names(k) { out[n] = .linear(v) } }
            for (k, v) in convs { for n in LoRAFile.names(k) { out[n] = .conv(v) } }
            return out
        }
        let unetLayers = index(unet.linears, unet.convs), teLayers = index(textEncoder.linears, textEncoder.convs)
        var attached = 0
        for (target, p) in pairs.sorted(by: { $0.key < $1.key }) {
            let parts = target.split(separator: "|", maxSplits: 1).map(String.init)
            let table = parts[0] == "unet" ? unetLayers : teLayers
            guard let layer = table[parts[1]] ?? table[parts[1].replacingOccurrences(of: ".", with: "_")] else {
                throw WeightsError.unsupported(file: path, reason: "LoRA layer '\(parts[1])' (\(parts[0])) matches no layer of this model")
            }
            let down = p.down!, up = p.up!
            let rank = down.shape.first ?? 0
            guard down.rank >= 2, up.rank >= 2, rank >= 1, up.shape[1] == rank else {
                throw WeightsError.unsupported(file: path, reason: "LoRA '\(parts[1])': down \(down.shape) and up \(up.shape) are not a rank-r pair (down [r, in], up [out, r] with r ≥ 1)")
            }
            guard multiplier.isFinite, (p.alpha ?? 1).isFinite else {
                throw WeightsError.unsupported(file: path, reason: "LoRA '\(parts[1])': the scale or alpha is not a finite number")
            }
            let scale = multiplier * (p.alpha ?? Float(rank)) / Float(rank)
            switch layer {
            case .linear(let l):
                guard down.shape == [rank, l.inFeatures], up.shape == [l.outFeatures, rank] else {
                    throw WeightsError.shapeMismatch(key: target, expected: [l.outFeatures, l.inFeatures], found: [up.shape[0], down.shape.last ?? 0], file: path)
                }
                l.adapters.append(LowRankAdapter(down: down, up: up, scale: scale, owner: owner))
            case .conv(let c):
                let w = c.weight.shape
                let d4 = down.rank == 4 ? down : down.reshaped([rank, w[1], 1, 1])
                guard d4.shape == [rank, w[1], w[2], w[3]], up.shape[0] == w[0] else {
                    throw WeightsError.shapeMismatch(key: target, expected: w, found: [up.shape[0]] + Array(d4.shape.dropFirst()), file: path)
                }
                c.adapters.append(LowRankAdapter(down: d4, up: up.rank == 4 ? up : up.reshaped([up.shape[0], rank, 1, 1]), scale: scale, owner: owner))
            }
            attached += 1
        }
        return attached
    }

    enum Either { case linear(Linear), conv(Conv2d) }

    /// The names a module path goes by in LoRA files: itself, and kohya's underscore form,
    /// with and without the text model's "text_model." prefix.
    static func names(_ path: String) -> [String] {
        let bare = path.hasPrefix("text_model.") ? String(path.dropFirst("text_model.".count)) : path
        let forms = [bare, "text_model." + bare]
        return forms + forms.map { $0.replacingOccurrences(of: ".", with: "_") }
    }
}
