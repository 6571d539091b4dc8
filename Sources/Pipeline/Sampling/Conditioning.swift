// What the UNet is conditioned on, per guidance branch (design §2): the text context rows, the
// base word's token positions in them, an optional offset δ added there (OneActor), the token
// positions the cross-attention skips (SceneWordMask), and the cross-attention extension
// (identity tokens) shared by every branch. Adapters change a
// Conditioning; the denoise loop only asks it for the rows of the branches a step needs.

public struct TextConditioning {
    /// Text-encoder output [count, 77, d].
    public var context: Tensor
    /// Token positions of the character's base word in the prompt (every sub-token of a
    /// multi-token word); empty when the prompt has no base word.
    public var basePositions: [Int]
    /// δ [1 or count, d], added to the context at every base position.
    public var offset: Tensor?
    /// Token positions every cross-attention layer skips (diffusers' encoder_attention_mask 0
    /// there); empty: every token is read.
    public var maskedPositions: [Int]

    public init(context: Tensor, basePositions: [Int] = [], offset: Tensor? = nil, maskedPositions: [Int] = []) {
        self.context = context; self.basePositions = basePositions; self.offset = offset; self.maskedPositions = maskedPositions
    }

    /// The context with the offset applied.
    public func resolved() -> Tensor {
        guard let offset, !basePositions.isEmpty else { return context }
        return context.addingAtPositions(basePositions, offset)
    }
}

/// A cross-attention extension that differs by guidance branch (the identity adapter: the
/// identity's tokens on the prompt branches, neutral ones on the unconditional branch).
public protocol BranchedCrossAttentionExtension {
    /// The extension for one UNet batch: the branches of `order`, `rows` rows each, in that order.
    func batched(_ order: [GuidanceBranch], rows: Int) throws -> CrossAttentionExtension
}

public struct Conditioning {
    public var branches: [GuidanceBranch: TextConditioning]
    public var crossAttentionExtension: BranchedCrossAttentionExtension?
    /// The reference image every self-attention layer also attends to (nil: none).
    public var referenceAttention: ReferenceAttention?

    public init(branches: [GuidanceBranch: TextConditioning], crossAttentionExtension: BranchedCrossAttentionExtension? = nil) {
        self.branches = branches; self.crossAttentionExtension = crossAttentionExtension
    }

    /// The context rows of `order`, concatenated in that order [order.count·count, 77, d].
    public func context(for order: [GuidanceBranch]) throws -> Tensor {
        let parts = try order.map { b -> Tensor in
            guard let c = branches[b] else { throw GenerationError.badValue("this guidance needs a \(b) branch the conditioning does not have") }
            return c.resolved()
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, dim: 0)
    }

    /// The cross-attention key mask for `order`'s branches, `rows` rows each, in that order
    /// (nil when no branch masks a token, so unmasked sampling runs exactly as before).
    public func contextMask(for order: [GuidanceBranch], rows: Int) throws -> AttentionKeyMask? {
        let texts = try order.map { b -> TextConditioning in
            guard let c = branches[b] else { throw GenerationError.badValue("this guidance needs a \(b) branch the conditioning does not have") }
            return c
        }
        guard texts.contains(where: { !$0.maskedPositions.isEmpty }) else { return nil }
        let keys = texts[0].context.shape[1]
        var masked: [Bool] = []
        for t in texts {
            var row = [Bool](repeating: false, count: keys)
            for p in t.maskedPositions {
                guard (1..<keys).contains(p) else { throw GenerationError.badValue("masked token position \(p) is outside 1…\(keys - 1)") }
                row[p] = true
            }
            for _ in 0..<rows { masked += row }
        }
        return AttentionKeyMask(masked: masked, keys: keys)
    }
}

extension Tensor {
    /// self [n, L, d] with `offset` [1 or n, d] added at token `positions` (differentiable in
    /// both): self + mask ⊙ offset, mask [1, L, 1] one at the positions.
    public func addingAtPositions(_ positions: [Int], _ offset: Tensor) -> Tensor {
        precondition(rank == 3 && offset.rank == 2 && offset.shape[1] == shape[2], "context [n, L, d] and offset [n, d]")
        var m = [Float](repeating: 0, count: shape[1])
        for p in positions where (0..<shape[1]).contains(p) { m[p] = 1 }
        let mask = Tensor(m, shape: [1, shape[1], 1])
        return self + mask * offset.reshaped([offset.shape[0], 1, offset.shape[1]])
    }
}
