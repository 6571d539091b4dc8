// Views: new shape/strides over the same storage, no copy. Each records a backward that
// maps the gradient back to the source's geometry.

extension Tensor {
    /// Dense row-major copy when needed; `self` when already contiguous.
    public func contiguous() -> Tensor {
        if isContiguous { return self }
        let out = Tensor(uninitialized: shape)
        StridedCopy.copy(from: self, to: out.dataPointer)
        return out.recording("contiguous", [self]) { g in [g] }
    }

    /// Same elements, new shape; one dimension may be -1. Copies only when the view is
    /// not expressible over the current strides.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        let known = s.filter { $0 != -1 }.reduce(1, *)
        if let i = s.firstIndex(of: -1) {
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            s[i] = count / known
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        let src = contiguous()
        let out = Tensor(storage: src.storage, shape: s, offset: src.offset)
        let inShape = shape
        return out.recording("reshape", [self]) { g in [g.reshaped(inShape)] }
    }

    public func flattened() -> Tensor { reshaped([count]) }

    /// Reorders dimensions: result dim i is source dim `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.count == rank && Set(order) == Set(0..<rank), "bad permutation \(order)")
        let out = Tensor(storage: storage, shape: order.map { shape[$0] },
                         strides: order.map { strides[$0] }, offset: offset)
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return out.recording("permute", [self]) { g in [g.permuted(inverse)] }
    }

    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a), axis(b))
        return permuted(order)
    }

    /// Elements `range` along `dim` (a view).
    public func sliced(_ dim: Int, _ range: Range<Int>) -> Tensor {
        let d = axis(dim)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[d],
                     "slice \(range) out of bounds for dim \(d) of \(shape)")
        var s = shape
        s[d] = range.count
        let out = Tensor(storage: storage, shape: s, strides: strides,
                         offset: offset + range.lowerBound * strides[d])
        let inShape = shape
        return out.recording("slice", [self]) { g in
            let full = Tensor(zeros: inShape)
            full.sliced(d, range).assign(g)
            return [full]
        }
    }

    /// Broadcasts size-1 dims (and new leading dims) to `newShape` with zero strides.
    public func expanded(_ newShape: [Int]) -> Tensor {
        precondition(newShape.count >= rank, "cannot expand \(shape) to \(newShape)")
        let lead = newShape.count - rank
        var st = [Int](repeating: 0, count: newShape.count)
        for i in 0..<rank {
            let n = newShape[lead + i]
            if shape[i] == n { st[lead + i] = strides[i] } else {
                precondition(shape[i] == 1, "cannot expand \(shape) to \(newShape)")
            }
        }
        if newShape == shape { return self }
        let out = Tensor(storage: storage, shape: newShape, strides: st, offset: offset)
        let inShape = shape
        return out.recording("expand", [self]) { g in [g.sumToShape(inShape)] }
    }

    public func unsqueezed(_ dim: Int) -> Tensor {
        let d = dim < 0 ? dim + rank + 1 : dim
        var s = shape
        s.insert(1, at: d)
        return reshaped(s)
    }

    public func squeezed(_ dim: Int) -> Tensor {
        let d = axis(dim)
        precondition(shape[d] == 1, "squeeze of dim \(d) of size \(shape[d])")
        var s = shape
        s.remove(at: d)
        return reshaped(s)
    }

    /// Writes `src` (broadcast to this view's shape) into this view's memory, in place,
    /// outside autograd.
    public func assign(_ src: Tensor) {
        let b = src.shape == shape ? src.detached() : src.detached().expanded(shape)
        if isContiguous {
            StridedCopy.copy(from: b, to: dataPointer)
        } else {
            let tmp = b.contiguous()
            ElementwiseKernels.scatter(tmp.dataPointer, into: self)
        }
    }
}
