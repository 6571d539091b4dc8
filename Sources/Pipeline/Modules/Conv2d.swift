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
        var y = x.conv2d(weight.tensor, bias, stride: stride, padding: padding)
        for a in adapters where a.scale != 0 {
            let r = a.down.shape[0]
            let up = a.up.rank == 4 ? a.up : a.up.reshaped([a.up.shape[0], r, 1, 1])
            y = y + x.conv2d(a.down, nil, stride: stride, padding: padding).conv2d(up, nil) * a.scale
        }
        return y
    }
}
