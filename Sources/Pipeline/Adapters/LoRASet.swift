// A LoRA file attached to a loaded model as one set of adapters (design §1 Adapters/): it can
// be rescaled and detached again without reloading the model — what a long-lived studio needs
// when the artist moves a LoRA slider or switches character. Each adapter carries the set's id
// (LowRankAdapter.owner); the set remembers each one's alpha/rank so a rescale is exact.

public final class LoRASet {
    public let id: String
    /// Where it came from (a file path).
    public let name: String
    public private(set) var multiplier: Float = 1
    public private(set) var attached = true
    let unet: UNet2DConditionModel, textEncoder: CLIPTextModel
    /// alpha/rank of each adapter, by layer and index among that layer's adapters of this set.
    private var base: [ObjectIdentifier: [Float]] = [:]

    init(id: String, name: String, unet: UNet2DConditionModel, textEncoder: CLIPTextModel) {
        self.id = id; self.name = name; self.unet = unet; self.textEncoder = textEncoder
        for l in linears { base[ObjectIdentifier(l)] = l.adapters.filter { $0.owner == id }.map(\.scale) }
        for c in convs { base[ObjectIdentifier(c)] = c.adapters.filter { $0.owner == id }.map(\.scale) }
    }

    /// The adapters a tuner left attached to `pipeline` (they carry no file's id), as one set:
    /// rescaled, merged and detached the way a loaded file's set is. With an `id` they are
    /// given it, so that a later tuner's adapters (id-less again) form a set of their own.
    public static func tuned(on pipeline: StableDiffusionPipeline, id: String = "") -> LoRASet {
        if !id.isEmpty {
            let retag = { (a: LowRankAdapter) -> LowRankAdapter in
                guard a.owner.isEmpty else { return a }
                var b = a; b.owner = id
                return b
            }
            for l in linears(pipeline.unet, pipeline.textEncoder) { l.adapters = l.adapters.map(retag) }
            for c in convs(pipeline.unet, pipeline.textEncoder) { c.adapters = c.adapters.map(retag) }
        }
        return LoRASet(id: id, name: "tuned", unet: pipeline.unet, textEncoder: pipeline.textEncoder)
    }

    /// Every layer an adapter set may touch.
    static func linears(_ unet: UNet2DConditionModel, _ textEncoder: CLIPTextModel) -> [Linear] { Array(unet.linears.values) + Array(textEncoder.linears.values) }
    static func convs(_ unet: UNet2DConditionModel, _ textEncoder: CLIPTextModel) -> [Conv2d] { Array(unet.convs.values) + Array(textEncoder.convs.values) }
    var linears: [Linear] { Self.linears(unet, textEncoder) }
    var convs: [Conv2d] { Self.convs(unet, textEncoder) }

    /// Sets the multiplier (effective scale = multiplier · alpha / rank). A merged set is
    /// unmerged, rescaled and merged again.
    public func rescale(_ m: Float) {
        precondition(m.isFinite, "LoRA multiplier must be finite")
        let wasMerged = merged
        if wasMerged { unmerge() }
        defer { if wasMerged { merge() } }
        multiplier = m
        for l in linears { l.adapters = scaled(l.adapters, base[ObjectIdentifier(l)] ?? []) }
        for c in convs { c.adapters = scaled(c.adapters, base[ObjectIdentifier(c)] ?? []) }
        for (layer, adapters) in detached { detached[layer] = scaled(adapters, base[layer] ?? []) }
    }

    private func scaled(_ adapters: [LowRankAdapter], _ scales: [Float]) -> [LowRankAdapter] {
        var k = 0
        return adapters.map { a in
            guard a.owner == id, k < scales.count else { return a }
            var b = a; b.scale = scales[k] * multiplier; k += 1
            return b
        }
    }

    /// True while this set's adapters are folded into the layers' weights.
    public private(set) var merged = false
    /// The layers' own weights while merged, put back by `unmerge` (bit for bit: no subtraction).
    private var originals: [ObjectIdentifier: Weight] = [:]
    private var mergedAdapters: [ObjectIdentifier: [LowRankAdapter]] = [:]

    /// Folds this set into the weights, W' = W + Σ scale · up·down: sampling then costs what the
    /// base model costs (one product per layer instead of three). For inference; a tuner trains
    /// unmerged adapters.
    public func merge() {
        guard attached, !merged else { return }
        for l in linears {
            let mine = l.adapters.filter { $0.owner == id }
            guard !mine.isEmpty else { continue }
            originals[ObjectIdentifier(l)] = l.weight; mergedAdapters[ObjectIdentifier(l)] = mine
            var w = l.weight.tensor
            for a in mine where a.scale != 0 { w = w + a.up.matmul(a.down) * a.scale }
            l.weight = Weight(w.contiguous())
            l.adapters.removeAll { $0.owner == id }
        }
        for c in convs {
            let mine = c.adapters.filter { $0.owner == id }
            guard !mine.isEmpty else { continue }
            originals[ObjectIdentifier(c)] = c.weight; mergedAdapters[ObjectIdentifier(c)] = mine
            var w = c.weight.tensor
            for a in mine where a.scale != 0 {
                let r = a.down.shape[0]
                let delta = a.up.reshaped([a.up.shape[0], r]).matmul(a.down.reshaped([r, a.down.count / r]))
                w = w + delta.reshaped(w.shape) * a.scale
            }
            c.weight = Weight(w.contiguous())
            c.adapters.removeAll { $0.owner == id }
        }
        merged = true
    }

    /// Puts the layers' own weights back and the adapters on again.
    public func unmerge() {
        guard merged else { return }
        for l in linears { if let w = originals[ObjectIdentifier(l)] { l.weight = w; l.adapters += mergedAdapters[ObjectIdentifier(l)] ?? [] } }
        for c in convs { if let w = originals[ObjectIdentifier(c)] { c.weight = w; c.adapters += mergedAdapters[ObjectIdentifier(c)] ?? [] } }
        originals = [:]; mergedAdapters = [:]
        merged = false
    }

    /// This set's adapters while detached, by layer (what `reattach` puts back).
    private var detached: [ObjectIdentifier: [LowRankAdapter]] = [:]

    /// Removes this set's adapters: the model computes exactly what it did before.
    public func detach() {
        guard attached else { return }
        unmerge()
        for l in linears { detached[ObjectIdentifier(l)] = l.adapters.filter { $0.owner == id }; l.adapters.removeAll { $0.owner == id } }
        for c in convs { detached[ObjectIdentifier(c)] = c.adapters.filter { $0.owner == id }; c.adapters.removeAll { $0.owner == id } }
        detached = detached.filter { !$0.value.isEmpty }
        attached = false
    }

    /// This set's adapters on `layer` at multiplier 1, attached, merged or detached: each
    /// (down, up, alpha/rank) — what a soup of several sets reads (LoRASoup).
    func unitAdapters(of layer: AnyObject, current: [LowRankAdapter]) -> [(down: Tensor, up: Tensor, scale: Float)] {
        let key = ObjectIdentifier(layer)
        let mine = detached[key] ?? mergedAdapters[key] ?? current.filter { $0.owner == id }
        let scales = base[key] ?? []
        return mine.enumerated().map { k, a in (a.down, a.up, k < scales.count ? scales[k] : a.scale) }
    }

    /// Puts a detached set back, at its current multiplier (a tuner can train on the bare model
    /// between the two: several tunings kept on one model, as `eval --stage-seeds` does).
    public func reattach() {
        guard !attached else { return }
        for l in linears { l.adapters += detached[ObjectIdentifier(l)] ?? [] }
        for c in convs { c.adapters += detached[ObjectIdentifier(c)] ?? [] }
        detached = [:]
        attached = true
    }
}
