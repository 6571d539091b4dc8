// Differentiable multi-head scaled-dot-product attention on [B, L, heads·d] tensors, the
// layout diffusers' Attention uses before head_to_batch_dim. Equals
// torch.nn.functional.scaled_dot_product_attention after splitting heads (with a key mask, its
// boolean attn_mask broadcast over the queries).

extension Tensor {
    /// softmax(scale · Q Kᵀ [+ causal mask] [+ key mask]) V per head; q [B, L, C], k/v [B, S, C];
    /// `keyMask` has B rows of S keys.
    public static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int,
                                 scale: Float? = nil, causal: Bool = false, keyMask: AttentionKeyMask? = nil) -> Tensor {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention takes [B, L, C] tensors")
        let c = q.shape[2]
        precondition(c % heads == 0 && k.shape[2] == c && v.shape[2] == c, "attention: widths \(q.shape) \(k.shape) \(v.shape), \(heads) heads")
        precondition(k.shape[0] == q.shape[0] && v.shape[0] == q.shape[0] && k.shape[1] == v.shape[1], "attention: batch/key mismatch")
        precondition(keyMask.map { $0.rows == q.shape[0] && $0.keys == k.shape[1] } ?? true, "attention: the key mask is not [B, S]")
        let d = c / heads
        let s = AttentionShape(batch: q.shape[0], queries: q.shape[1], keys: k.shape[1], heads: heads,
                               headDim: d, scale: scale ?? 1 / Float(d).squareRoot(), causal: causal)
        let qc = q.contiguous().detached(), kc = k.contiguous().detached(), vc = v.contiguous().detached()
        let out = Tensor(uninitialized: q.shape)
        FlopCounter.add(4 * Double(s.batch * s.queries * s.keys * c))
        AttentionKernel.forward(s, q: qc.dataPointer, k: kc.dataPointer, v: vc.dataPointer, out: out.dataPointer, mask: keyMask)
        return out.recording("attention", [q, k, v]) { g in
            let gc = g.contiguous()
            let dq = Tensor(uninitialized: qc.shape), dk = Tensor(uninitialized: kc.shape), dv = Tensor(uninitialized: vc.shape)
            AttentionKernel.backward(s, q: qc.dataPointer, k: kc.dataPointer, v: vc.dataPointer, dOut: gc.dataPointer,
                                     dq: dq.dataPointer, dk: dk.dataPointer, dv: dv.dataPointer, mask: keyMask)
            return [dq, dk, dv]
        }
    }
}
