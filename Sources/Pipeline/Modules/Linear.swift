// torch.nn.Linear: y = x·Wᵀ + b, weight [out, in], plus optional low-rank adapters
// (LoRA: y += scale · (x·Aᵀ)·Bᵀ, A = down [r, in], B = up [out, r]) attached at run time.
// A class, so an adapter attached through a model's `linears` registry reaches the layer.

public final class Linear {
    /// `var` so an adapter set can fold itself in and put the original back (LoRASet.merge).
    public internal(set) var weight: Weight
    public let bias: Tensor?
    public var adapters: [LowRankAdapter] = []

    public init(weight: Tensor, bias: Tensor?) { self.weight = Weight(weight); self.bias = bias }

    public init(_ w: WeightScope, in inF: Int, out outF: Int, bias hasBias: Bool = true) throws {
        weight = try w.weight("weight", [outF, inF])
        bias = hasBias ? try w.tensor("bias", [outF]) : nil
        w.reader.register(self, at: String(w.prefix.dropLast()))
    }

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        var y = x.linear(weight.tensor, bias)
        for a in adapters where a.scale != 0 { y = y + x.linear(a.down, nil).linear(a.up, nil) * a.scale }
        return y
    }
}

/// One LoRA pair: for a Linear, down [rank, in] and up [out, rank]; for a Conv2d, down
/// [rank, in, k, k] and up [out, rank, 1, 1].
public struct LowRankAdapter {
    public var down: Tensor
    public var up: Tensor
    public var scale: Float
    /// The adapter set it belongs to (LoRASet), so a set can rescale and detach its own.
    public var owner: String

    public init(down: Tensor, up: Tensor, scale: Float, owner: String = "") {
        precondition(down.shape[0] == up.shape[1], "LoRA down \(down.shape) / up \(up.shape) ranks differ")
        self.down = down; self.up = up; self.scale = scale; self.owner = owner
    }
}
