// torch.nn.Conv2d (groups 1, dilation 1), weight [out, in, k, k].

public struct Conv2d {
    public var weight: Weight
    public var bias: Tensor?
    public let stride: Int, padding: Int

    public init(_ w: WeightScope, in inC: Int, out outC: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias hasBias: Bool = true) throws {
        weight = try w.weight("weight", [outC, inC, kernel, kernel])
        bias = hasBias ? try w.tensor("bias", [outC]) : nil
        self.stride = stride; self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.conv2d(weight.tensor, bias, stride: stride, padding: padding) }
}
