// The convolutional trunk the World's image models share (the judge, the identity encoder):
//   conv3×3(3→32) · 4 × [conv3×3 stride 2, GroupNorm, SiLU] (32→48→64→96→128, 64² → 4²)
//   → flatten 2048 → linear 256 → SiLU.
// Weight names: stem, down.{0…3}, norm.{0…3}, hidden — what the shipped judges use.

public final class SpriteTrunk {
    static let widths = [32, 48, 64, 96, 128]
    public static let featureWidth = 256
    let stem: Conv2d
    let downs: [Conv2d]
    let norms: [GroupNorm]
    let hidden: Linear

    init(_ w: WeightScope) throws {
        let c = SpriteTrunk.widths
        stem = try Conv2d(w("stem"), in: 3, out: c[0], kernel: 3, padding: 1)
        downs = try (0..<4).map { try Conv2d(w("down")("\($0)"), in: c[$0], out: c[$0 + 1], kernel: 3, stride: 2, padding: 1) }
        norms = try (0..<4).map { try GroupNorm(w("norm")("\($0)"), groups: 8, channels: c[$0 + 1], eps: 1e-5) }
        hidden = try Linear(w("hidden"), in: c[4] * 16, out: SpriteTrunk.featureWidth)
    }

    /// The norms' parameters by name (linears and convs are in the reader's registry).
    var normParameters: [(String, Tensor)] {
        norms.enumerated().flatMap { i, n in [("norm.\(i).weight", n.weight), ("norm.\(i).bias", n.bias)] }
    }

    /// Images [B, 3, 64, 64] in [−1, 1] → features [B, 256].
    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = stem(x).silu()
        for (d, n) in zip(downs, norms) { h = n(d(h)).silu() }
        return head(h)
    }

    /// The last (4²) feature map → features [B, 256].
    func head(_ lastMap: Tensor) -> Tensor { hidden(lastMap.reshaped([lastMap.shape[0], -1])).silu() }

    /// The activations after the stem and after each downsampling stage (64², 32², 16², 8², 4²).
    func featureMaps(_ x: Tensor) -> [Tensor] {
        var h = stem(x).silu()
        var out = [h]
        for (d, n) in zip(downs, norms) { h = n(d(h)).silu(); out.append(h) }
        return out
    }
}

extension WeightReader {
    /// Every trainable tensor of a model built on this reader, by name, with `extra` (norm
    /// parameters, which are plain tensors), sorted (for the optimiser and for saving).
    func namedParameters(extra: [(String, Tensor)]) -> [(String, Tensor)] {
        var out = extra
        for (k, l) in linears { out.append((k + ".weight", l.weight.tensor)); if let b = l.bias { out.append((k + ".bias", b)) } }
        for (k, l) in convs { out.append((k + ".weight", l.weight.tensor)); if let b = l.bias { out.append((k + ".bias", b)) } }
        return out.sorted { $0.0 < $1.0 }
    }
}
