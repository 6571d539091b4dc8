// A soup of several tunings of the same adapters (model soups, Wortsman et al. 2022, "Model
// soups: averaging weights of multiple fine-tuned models improves accuracy without increasing
// inference time": the uniform soup). Per layer, the mean of the tunings' weight deltas at
// multiplier 1,
//   ΔW = (1/K) Σ_k Σ_i s_ki · B_ki·A_ki        (s = alpha/rank of each adapter),
// held exactly as one adapter of rank Σ r: the downs stacked, the ups side by side, each up
// scaled by s/K. Sampling costs one adapter per layer, and a file of it is an ordinary LoRA.
//
// Norm-matched (`normMatched`): each layer's soup is rescaled to its members' mean Frobenius
// norm, ΔW ← ΔW · mean_k ‖ΔW_k‖ / ‖ΔW‖ (the norm-preserving idea of SLERP merges, per layer).
// Averaging deltas that only partly agree shrinks them — two of equal norm with correlation ρ
// keep √((1+ρ)/2) of it — so the multiplier a model recommends for one tuning would under-apply
// the plain soup (measured on troupe-mini: docs/stages.md, soups of tunings).

import Foundation

public enum LoRASoup {
    /// One adapter at multiplier 1: down [r, in(, k, k)], up [out, r(, 1, 1)], scale alpha/rank.
    typealias Adapter = (down: Tensor, up: Tensor, scale: Float)

    /// One layer's soup of `members` (each member's adapters on that layer; a member without
    /// any counts as a zero delta), in the adapters' own shapes, with the plain soup's norm over
    /// the members' mean norm (1 where they are all 0); nil where no member has an adapter.
    static func combine(_ members: [[Adapter]], normMatched: Bool) -> (down: Tensor, up: Tensor, ratio: Float)? {
        let k = Float(members.count)
        let all = members.flatMap { $0 }
        guard !all.isEmpty else { return nil }
        let ups = all.map { $0.up * ($0.scale / k) }
        /// ‖Σ up·down‖ over a run of adapters, the ups already scaled.
        func norm(_ downs: [Tensor], _ ups: [Tensor]) -> Float {
            let d = Tensor.concat(downs.map { $0.reshaped([$0.shape[0], $0.count / $0.shape[0]]) }, dim: 0)
            let u = Tensor.concat(ups.map { $0.reshaped([$0.shape[0], $0.count / $0.shape[0]]) }, dim: 1)
            return frobenius(down: d, up: u)
        }
        var start = 0, memberNorms: [Float] = []
        for m in members {
            memberNorms.append(m.isEmpty ? 0 : norm(m.map(\.down), Array(ups[start..<start + m.count])) * k)
            start += m.count
        }
        let soupNorm = norm(all.map(\.down), ups), target = memberNorms.reduce(0, +) / k
        let ratio = target > 0 ? soupNorm / target : 1
        let up = Tensor.concat(ups, dim: 1)
        return (Tensor.concat(all.map(\.down), dim: 0).contiguous(), (normMatched && soupNorm > 0 ? up * (target / soupNorm) : up).contiguous(), ratio)
    }

    /// The soup of `members` (sets on one model, attached or detached, at any multiplier: their
    /// deltas are read at multiplier 1), attached to the model as a new set `id` at multiplier 1,
    /// and per layer the plain soup's norm over its members' mean norm.
    public static func make(of members: [LoRASet], id: String, normMatched: Bool) -> (set: LoRASet, normRatios: [Float]) {
        precondition(!members.isEmpty, "a soup needs at least one tuning")
        let layers = { (s: LoRASet) in Set(s.linears.map { ObjectIdentifier($0) }) }
        precondition(members.allSatisfy { layers($0) == layers(members[0]) }, "a soup's tunings must be on one model")
        let unet = members[0].unet, textEncoder = members[0].textEncoder
        var ratios: [Float] = []
        for l in LoRASet.linears(unet, textEncoder) {
            guard let s = combine(members.map { $0.unitAdapters(of: l, current: l.adapters) }, normMatched: normMatched) else { continue }
            l.adapters.append(LowRankAdapter(down: s.down, up: s.up, scale: 1, owner: id)); ratios.append(s.ratio)
        }
        for c in LoRASet.convs(unet, textEncoder) {
            guard let s = combine(members.map { $0.unitAdapters(of: c, current: c.adapters) }, normMatched: normMatched) else { continue }
            c.adapters.append(LowRankAdapter(down: s.down, up: s.up, scale: 1, owner: id)); ratios.append(s.ratio)
        }
        return (LoRASet(id: id, name: "soup", unet: unet, textEncoder: textEncoder), ratios)
    }

    /// The soup of LoRA files (any layout LoRAFile reads) as the tensors of one PEFT-layout file
    /// (`<component>.<path>.lora_A.weight` / `.lora_B.weight`, no alpha: scale 1, as the stage
    /// tuners write theirs, so a later stage can continue a soup), and per
    /// layer the plain soup's norm over its members' mean norm. Files whose pairs for one layer
    /// differ in shape (another model's) are refused, naming the layer.
    public static func file(of members: [LoRAFile], normMatched: Bool) throws -> (tensors: [String: Tensor], normRatios: [Float]) {
        precondition(!members.isEmpty, "a soup needs at least one tuning")
        var tensors: [String: Tensor] = [:], ratios: [Float] = []
        for target in Set(members.flatMap(\.pairs.keys)).sorted() {
            let pairs = members.map { $0.pairs[target] }
            let present = pairs.compactMap { $0 }
            let first = present[0]
            for (f, p) in zip(members, pairs) {
                guard let p else { continue }
                guard let d = p.down, let u = p.up, let d0 = first.down, let u0 = first.up, d.rank >= 2, u.rank >= 2, d.shape[0] == u.shape[1],
                      d.shape.dropFirst() == d0.shape.dropFirst(), u.shape[0] == u0.shape[0], u.shape.dropFirst(2) == u0.shape.dropFirst(2) else {
                    throw WeightsError.unsupported(file: f.path, reason: "its LoRA layer '\(target)' does not match the first file's: these are not tunings of one model")
                }
            }
            let adapters = pairs.map { p -> [Adapter] in
                guard let p, let d = p.down, let u = p.up else { return [] }
                return [(d, u, (p.alpha ?? Float(d.shape[0])) / Float(d.shape[0]))]
            }
            guard let s = combine(adapters, normMatched: normMatched) else { continue }
            let parts = target.split(separator: "|", maxSplits: 1).map(String.init)
            let stem = parts[0] + "." + parts[1]
            tensors[stem + ".lora_A.weight"] = s.down
            tensors[stem + ".lora_B.weight"] = s.up
            ratios.append(s.ratio)
        }
        return (tensors, ratios)
    }

    /// ‖up·down‖_F from the rank-sized Gram matrices: Σ (upᵀup) ⊙ (down·downᵀ).
    static func frobenius(down: Tensor, up: Tensor) -> Float {
        let g = up.transposed().matmul(up) * down.matmul(down.transposed())
        return max(0, g.sum().item()).squareRoot()
    }
}
