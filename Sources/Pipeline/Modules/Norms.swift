// torch.nn.GroupNorm and torch.nn.LayerNorm (affine), as loaded modules.

public struct GroupNorm {
    public var weight: Tensor, bias: Tensor
    public let groups: Int, eps: Float

    public init(_ w: WeightScope, groups: Int, channels: Int, eps: Float) throws {
        weight = try w.tensor("weight", [channels]); bias = try w.tensor("bias", [channels])
        self.groups = groups; self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.groupNorm(groups: groups, weight: weight, bias: bias, eps: eps) }
    public var parameters: [Tensor] { [weight, bias] }
}

public struct LayerNorm {
    public var weight: Tensor, bias: Tensor
    public let eps: Float

    public init(_ w: WeightScope, dim: Int, eps: Float) throws {
        weight = try w.tensor("weight", [dim]); bias = try w.tensor("bias", [dim])
        self.eps = eps
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
    public var parameters: [Tensor] { [weight, bias] }
}
