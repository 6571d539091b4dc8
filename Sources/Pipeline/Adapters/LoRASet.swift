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

    var linears: [Linear] { Array(unet.linears.values) + Array(textEncoder.linears.values) }
    var convs: [Conv2d] { Array(unet.convs.values) + Array(textEncoder.convs.values) }

    /// Sets the multiplier (effective scale = multiplier · alpha / rank).
    public func rescale(_ m: Float) {
        precondition(m.isFinite, "LoRA multiplier must be finite")
        multiplier = m
        for l in linears { l.adapters = scaled(l.adapters, base[ObjectIdentifier(l)] ?? []) }
        for c in convs { c.adapters = scaled(c.adapters, base[ObjectIdentifier(c)] ?? []) }
    }

    private func scaled(_ adapters: [LowRankAdapter], _ scales: [Float]) -> [LowRankAdapter] {
        var k = 0
        return adapters.map { a in
            guard a.owner == id, k < scales.count else { return a }
            var b = a; b.scale = scales[k] * multiplier; k += 1
            return b
        }
    }

    /// Removes this set's adapters: the model computes exactly what it did before.
    public func detach() {
        for l in linears { l.adapters.removeAll { $0.owner == id } }
        for c in convs { c.adapters.removeAll { $0.owner == id } }
        attached = false
    }
}
