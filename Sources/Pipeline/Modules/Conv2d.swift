// torch.nn.Conv2d (groups 1, dilation 1), weight [out, in, k, k], plus optional low-rank
// adapters (LoRA/LoCon: y += scale · up(down(x)), down a k×k conv with the layer's stride and
// padding to `rank` channels, up a 1×1 conv back).

public final class Conv2d {
    /// `var` so an adapter set can fold itself in and put the original back (LoRASet.merge).
    public internal(set) var weight: Weight
    public let bias: Tensor?
    public let stride: Int, padding: Int
    public var adapters: [LowRankAdapter] = []

    public init(_ w: WeightScope, in inC: Int, out outC: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias hasBias: Bool = true) throws {
        weight = try w.weight("weight", [outC, inC, kernel, kernel])
        bias = hasBias ? try w.tensor("bias", [outC]) : nil
        self.stride = stride; self.padding = padding
        w.reader.register(self, at: String(w.prefix.dropLast()))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let active = adapters.filter { $0.scale != 0 }
        guard !active.isEmpty else { return x.conv2d(weight.tensor, bias, stride: stride, padding: padding) }
        // The layer and its adapters' down convolutions in one pass (one column matrix).
        let cout = weight.shape[0]
        let all = x.conv2d(weight.tensor, bias, downs: active.map(\.down), stride: stride, padding: padding)
        var y = all.sliced(1, 0..<cout)
        var at = cout
        for a in active {
            let r = a.down.shape[0]
            let up = a.up.rank == 4 ? a.up : a.up.reshaped([a.up.shape[0], r, 1, 1])
            y = y + all.sliced(1, at..<(at + r)).conv2d(up, nil) * a.scale
            at += r
        }
        return y
    }
}
