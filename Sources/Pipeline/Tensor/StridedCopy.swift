// Copies an arbitrarily strided tensor into dense row-major memory. The innermost dimension
// is a tight loop (unit stride when possible); outer dimensions are walked with a counter.
// Large copies split over the outermost dimension across cores.

enum StridedCopy {
    static func copy(from t: Tensor, to dst: UnsafeMutablePointer<Float>) {
        let n = t.count
        if n == 0 { return }
        if t.isContiguous {
            dst.update(from: t.dataPointer, count: n)
            return
        }
        // Drop size-1 dims and merge dims that are contiguous with each other.
        var shape: [Int] = []
        var strides: [Int] = []
        for i in 0..<t.rank where t.shape[i] != 1 {
            if let last = shape.last, strides.last! == t.strides[i] * t.shape[i] {
                shape[shape.count - 1] = last * t.shape[i]
                strides[strides.count - 1] = t.strides[i]
            } else {
                shape.append(t.shape[i]); strides.append(t.strides[i])
            }
        }
        if shape.isEmpty { dst[0] = t.dataPointer[0]; return }
        let src = t.dataPointer
        if shape.count == 1 {
            // One strided run (a full reduction's broadcast gradient has stride 0 here): chunks
            // of a plain loop, not one task per element.
            let step = strides[0]
            Parallel.forChunks(n, grain: 1 << 15) { range in
                if step == 0 { (dst + range.lowerBound).update(repeating: src[0], count: range.count) }
                else { for j in range { dst[j] = src[j * step] } }
            }
            return
        }
        let outer = shape[0]
        let inner = n / outer
        let innerShape = Array(shape.dropFirst()), innerStrides = Array(strides.dropFirst())
        Parallel.forEach(outer, grain: max(1, 16384 / max(inner, 1))) { o in
            copyBlock(src: src + o * strides[0], dst: dst + o * inner, shape: innerShape, strides: innerStrides)
        }
    }

    private static func copyBlock(src: UnsafeMutablePointer<Float>, dst: UnsafeMutablePointer<Float>,
                                  shape: [Int], strides: [Int]) {
        let r = shape.count
        if r == 0 { dst[0] = src[0]; return }
        let innerN = shape[r - 1], innerS = strides[r - 1]
        let rows = shape.dropLast().reduce(1, *)
        var idx = [Int](repeating: 0, count: max(r - 1, 0))
        var srcOff = 0
        var d = dst
        for _ in 0..<rows {
            let s = src + srcOff
            if innerS == 1 {
                d.update(from: s, count: innerN)
            } else {
                for j in 0..<innerN { d[j] = s[j * innerS] }
            }
            d += innerN
            // advance the multi-index over the outer dims
            var k = r - 2
            while k >= 0 {
                idx[k] += 1
                srcOff += strides[k]
                if idx[k] < shape[k] { break }
                srcOff -= strides[k] * shape[k]
                idx[k] = 0
                k -= 1
            }
        }
    }
}
