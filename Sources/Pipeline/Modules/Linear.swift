// torch.nn.Linear: y = x·Wᵀ + b, weight [out, in].

public struct Linear {
    public var weight: Weight
    public var bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) { self.weight = Weight(weight); self.bias = bias }

    public init(_ w: WeightScope, in inF: Int, out outF: Int, bias hasBias: Bool = true) throws {
        weight = try w.weight("weight", [outF, inF])
        bias = hasBias ? try w.tensor("bias", [outF]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight.tensor, bias) }
}
