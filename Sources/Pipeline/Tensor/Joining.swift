// Concatenation along a dim and row gathering (embedding lookup), with autograd.

extension Tensor {
    /// Joins tensors that agree on every dim except `dim`.
    public static func concat(_ parts: [Tensor], dim: Int) -> Tensor {
        precondition(!parts.isEmpty, "concat of nothing")
        let d = parts[0].axis(dim)
        var shape = parts[0].shape
        for p in parts.dropFirst() {
            precondition(p.rank == shape.count, "concat rank mismatch")
            for i in 0..<shape.count where i != d {
                precondition(p.shape[i] == shape[i], "concat: shape \(p.shape) vs \(parts[0].shape) off dim \(d)")
            }
        }
        shape[d] = parts.map { $0.shape[d] }.reduce(0, +)
        let out = Tensor(uninitialized: shape)
        var start = 0
        var ranges: [Range<Int>] = []
        for p in parts {
            let r = start..<(start + p.shape[d])
            out.sliced(d, r).assign(p)
            ranges.append(r)
            start += p.shape[d]
        }
        return out.recording("concat", parts) { g in ranges.map { g.sliced(d, $0).contiguous() } }
    }

    /// Rows of a [V, D] table for integer `ids` (stored as floats): shape ids.shape + [D].
    public func gatherRows(_ ids: [Int], shape idShape: [Int]) -> Tensor {
        precondition(rank == 2, "gatherRows needs a [V, D] table, got \(shape)")
        precondition(ids.count == idShape.reduce(1, *), "ids do not fill \(idShape)")
        let v = shape[0], d = shape[1]
        let table = contiguous()
        let out = Tensor(uninitialized: idShape + [d])
        for (i, id) in ids.enumerated() {
            precondition(id >= 0 && id < v, "id \(id) outside table of \(v) rows")
            (out.dataPointer + i * d).update(from: table.dataPointer + id * d, count: d)
        }
        let tableShape = shape
        return out.recording("gather", [self]) { g in
            let gt = Tensor(zeros: tableShape)
            let gc = g.contiguous()
            for (i, id) in ids.enumerated() {
                let dst = gt.dataPointer + id * d, src = gc.dataPointer + i * d
                for j in 0..<d { dst[j] += src[j] }
            }
            return [gt]
        }
    }

    /// Rows `ids` of the first axis (repeats allowed; gradients add up): gatherRows over the
    /// tensor seen as [N, rest].
    public func selectingRows(_ ids: [Int]) -> Tensor {
        let rest = Array(shape.dropFirst())
        return reshaped([shape[0], rest.reduce(1, *)]).gatherRows(ids, shape: [ids.count]).reshaped([ids.count] + rest)
    }
}
