// torch.nn.Linear: y = x·Wᵀ + b, weight [out, in].

public struct Linear {
    public var weight: Tensor
    public var bias: Tensor?

    public init(weight: Tensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    public init(_ w: WeightScope, in inF: Int, out outF: Int, bias hasBias: Bool = true) throws {
        weight = try w.tensor("weight", [outF, inF])
        bias = hasBias ? try w.tensor("bias", [outF]) : nil
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.linear(weight, bias) }
    public var parameters: [Tensor] { [weight] + (bias.map { [$0] } ?? []) }
}
