// OneActor's projector (arXiv 2404.10267 §3.2; the public code's projector.py): a small
// convolutional network from the UNet's mid-block output h of a sample to a semantic offset δ
// in the text encoder's width, added at the character's base word. Shapes, with C the mid-block
// channels, s its side and d the text width:
//   stem   conv3×3 (stride 2 when s ≥ 4) C → C/2, GroupNorm, SiLU
//   res×2  x ← SiLU(x + GN(conv3×3(SiLU(GN(conv3×3(x))))))
//   pool   adaptive average pool to 2×2 (global when the map is smaller)
//   head   flatten → Linear(4·C/2 → d) → LayerNorm(d)
// The reference uses BatchNorm and a fixed flatten size for SDXL; GroupNorm keeps it
// independent of the tiny batches tuning uses, and the adaptive pool sizes it for any model
// (troupe-mini: 64×4×4 → 128; SD 1.5 at 512²: 1280×8×8 → 768). Keys: stem.conv, stem.norm,
// res.{0,1}.{conv1,norm1,conv2,norm2}, proj, proj_norm (tools/fixtures/oneactor.py builds the
// same module in PyTorch).

import Foundation

public struct ProjectorConfig: Codable, Sendable, Equatable {
    public var inChannels: Int
    public var inSize: Int
    public var outDim: Int
    public init(inChannels: Int, inSize: Int, outDim: Int) { self.inChannels = inChannels; self.inSize = inSize; self.outDim = outDim }

    var hidden: Int { max(1, inChannels / 2) }
    var stride: Int { inSize >= 4 ? 2 : 1 }
    var pooledSide: Int { let s = (inSize + 2 * 1 - 3) / stride + 1; return s >= 2 && s % 2 == 0 ? 2 : 1 }
    var groups: Int { [8, 4, 2, 1].first { hidden % $0 == 0 }! }
}

public final class Projector {
    public let config: ProjectorConfig
    public let reader: WeightReader
    let stemConv: Conv2d, stemNorm: GroupNorm
    let res: [(conv1: Conv2d, norm1: GroupNorm, conv2: Conv2d, norm2: GroupNorm)]
    let proj: Linear
    let projNorm: LayerNorm

    public init(config c: ProjectorConfig, weights reader: WeightReader) throws {
        guard c.inChannels >= 1, c.inSize >= 1, c.outDim >= 1, c.inChannels <= 8192, c.outDim <= 8192, c.inSize <= 256 else {
            throw WeightsError.badConfig(file: "projector", reason: "channels \(c.inChannels), side \(c.inSize), width \(c.outDim) out of range")
        }
        config = c; self.reader = reader
        let w = reader.scope("")
        let h = c.hidden
        stemConv = try Conv2d(w("stem")("conv"), in: c.inChannels, out: h, kernel: 3, stride: c.stride, padding: 1)
        stemNorm = try GroupNorm(w("stem")("norm"), groups: c.groups, channels: h, eps: 1e-5)
        res = try (0..<2).map { i in
            let r = w("res")("\(i)")
            return (try Conv2d(r("conv1"), in: h, out: h, kernel: 3, padding: 1), try GroupNorm(r("norm1"), groups: c.groups, channels: h, eps: 1e-5),
                    try Conv2d(r("conv2"), in: h, out: h, kernel: 3, padding: 1), try GroupNorm(r("norm2"), groups: c.groups, channels: h, eps: 1e-5))
        }
        proj = try Linear(w("proj"), in: h * c.pooledSide * c.pooledSide, out: c.outDim)
        projNorm = try LayerNorm(w("proj_norm"), dim: c.outDim, eps: 1e-5)
    }

    /// The final layer norm's gain: the scale δ starts at.
    public var outputGain: Tensor { projNorm.weight }

    /// Fresh weights (deterministic for a seed).
    public convenience init(config: ProjectorConfig, seed: UInt64) throws { try self.init(config: config, weights: WeightReader(randomSeed: seed)) }

    /// Every tensor, by key (for the optimiser, checkpoints and the saved file).
    public var namedParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        for (k, l) in reader.linears { out.append((k + ".weight", l.weight.tensor)); if let b = l.bias { out.append((k + ".bias", b)) } }
        for (k, l) in reader.convs { out.append((k + ".weight", l.weight.tensor)); if let b = l.bias { out.append((k + ".bias", b)) } }
        out.append(("stem.norm.weight", stemNorm.weight)); out.append(("stem.norm.bias", stemNorm.bias))
        for (i, r) in res.enumerated() {
            out += [("res.\(i).norm1.weight", r.norm1.weight), ("res.\(i).norm1.bias", r.norm1.bias),
                    ("res.\(i).norm2.weight", r.norm2.weight), ("res.\(i).norm2.bias", r.norm2.bias)]
        }
        out.append(("proj_norm.weight", projNorm.weight)); out.append(("proj_norm.bias", projNorm.bias))
        return out.sorted { $0.0 < $1.0 }
    }

    /// h [B, C, s, s] → δ [B, d].
    public func callAsFunction(_ h: Tensor) -> Tensor {
        precondition(h.rank == 4 && h.shape[1] == config.inChannels, "projector input [B, \(config.inChannels), s, s], got \(h.shape)")
        var x = stemNorm(stemConv(h)).silu()
        for r in res {
            let y = r.norm2(r.conv2(r.norm1(r.conv1(x)).silu()))
            x = (x + y).silu()
        }
        let (b, ch, s) = (x.shape[0], x.shape[1], x.shape[2])
        let p = config.pooledSide
        let pooled = p == 2 ? x.contiguous().reshaped([b, ch, 2, s / 2, 2, x.shape[3] / 2]).mean(axes: [3, 5])
                            : x.mean(axes: [2, 3])
        return projNorm(proj(pooled.reshaped([b, ch * p * p])))
    }
}
