// The identity embedding fed to the UNet while a stage's LoRA trains (design §4: the multi-stage
// fine-tune and the identity embedding together, the approach the product is built on). The
// frozen identity adapter reads an accepted reference and the LoRA learns what the adapter's
// tokens do not already carry; sampling then feeds the same adapter a reference (eval's
// stages+identity: the first accepted one).
// Each row being denoised reads the tokens of *another* accepted reference than its own (when
// there is more than one): the adapter was trained that way — a character in one scene → the
// same character in another — and a row that read its own image's spatial tokens would teach
// the LoRA to copy the reference's pose and expression, which sampling would then repeat.

import Foundation

public struct TuningIdentity {
    public let adapter: IdentityAdapter
    /// Each accepted reference's tokens (one-row sets), in the references' order.
    let tokens: [IdentityTokenSet]

    /// `features`: each reference's adapter features [1, inputWidth]
    /// (IdentityEncoder.adapterFeatures), in the order the tuner is given the references.
    public init(adapter: IdentityAdapter, features: [Tensor]) throws {
        guard !features.isEmpty else { throw GenerationError.badValue("the identity embedding needs at least one reference") }
        for f in features where f.shape != [1, adapter.inputWidth] {
            throw GenerationError.badValue("identity features [1, \(adapter.inputWidth)] per reference, got \(f.shape)")
        }
        self.adapter = adapter
        tokens = GradMode.noGrad { features.map { adapter.tokenSet($0) } }
    }

    public var referenceCount: Int { tokens.count }

    /// The reference whose tokens a row made from reference `own` reads: another one, drawn
    /// from `r`, or `own` when it is the only one.
    func source(for own: Int, _ r: inout SplitMixRandom) -> Int {
        let n = tokens.count
        guard n > 1 else { return own }
        return (own + 1 + Int(r.next() % UInt64(n - 1))) % n
    }

    /// The cross-attention extension for batch rows reading `sources` (reference indices).
    func attention(sources: [Int], scale: Float) -> IdentityAttention {
        adapter.attention(tokens: IdentityTokenSet.concat(sources.map { tokens[$0] }), scale: scale)
    }
}
