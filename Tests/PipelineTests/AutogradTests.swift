// Autograd mechanics (accumulation, no-grad, shared subgraphs) and finite-difference checks of
// the ops whose backward is hand-written (attention, norms, conv), independent of PyTorch.

import XCTest
@testable import Pipeline

final class AutogradTests: XCTestCase {
    func testGradientAccumulatesOverUsesAndCalls() {
        let x = Tensor([1, 2, 3], shape: [3], requiresGrad: true)
        let y = (x * x + x).sum()          // dy/dx = 2x + 1
        y.backward()
        XCTAssertEqual(x.grad!.toArray(), [3, 5, 7])
        (x * 2).sum().backward()           // accumulates
        XCTAssertEqual(x.grad!.toArray(), [5, 7, 9])
        x.zeroGrad()
        XCTAssertNil(x.grad)
    }

    func testNoGradRecordsNothing() {
        let x = Tensor([1, 2], shape: [2], requiresGrad: true)
        let y = GradMode.noGrad { x * 3 }
        XCTAssertFalse(y.requiresGrad)
        XCTAssertNil(y.node)
        XCTAssertTrue(GradMode.isEnabled)
    }

    /// Central differences of L = Σ w ⊙ f(x) against backward, in Double-free fp32 with a
    /// loose tolerance (finite differences in fp32 are good to ~1e-2 relative).
    func finiteDifferenceCheck(_ name: String, _ inputs: [Tensor], eps: Float = 1e-2, tol: Float = 2e-2,
                               _ f: ([Tensor]) -> Tensor) {
        var rng = SplitMixRandom(seed: 99)
        for x in inputs { x.requiresGrad = true; x.zeroGrad() }
        let y0 = f(inputs)
        let w = Tensor.randn(y0.shape, using: &rng)
        (y0 * w).sum().backward()
        for (idx, x) in inputs.enumerated() {
            let g = x.grad!.toArray()
            let p = x.dataPointer
            for i in stride(from: 0, to: x.count, by: max(1, x.count / 7)) {
                let old = p[i]
                p[i] = old + eps
                let lp = GradMode.noGrad { (f(inputs) * w).sum().item() }
                p[i] = old - eps
                let lm = GradMode.noGrad { (f(inputs) * w).sum().item() }
                p[i] = old
                let num = (lp - lm) / (2 * eps)
                XCTAssertEqual(g[i], num, accuracy: tol * max(1, abs(num)), "\(name) input \(idx)[\(i)]")
            }
        }
    }

    func testFiniteDifferences() {
        var rng = SplitMixRandom(seed: 3)
        finiteDifferenceCheck("attention", [Tensor.randn([1, 5, 8], using: &rng), Tensor.randn([1, 6, 8], using: &rng), Tensor.randn([1, 6, 8], using: &rng)]) {
            Tensor.attention(q: $0[0], k: $0[1], v: $0[2], heads: 2)
        }
        finiteDifferenceCheck("causal attention", [Tensor.randn([1, 5, 8], using: &rng), Tensor.randn([1, 5, 8], using: &rng), Tensor.randn([1, 5, 8], using: &rng)]) {
            Tensor.attention(q: $0[0], k: $0[1], v: $0[2], heads: 2, causal: true)
        }
        finiteDifferenceCheck("groupnorm", [Tensor.randn([2, 4, 3, 3], using: &rng), Tensor.randn([4], using: &rng), Tensor.randn([4], using: &rng)]) {
            $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2])
        }
        finiteDifferenceCheck("conv", [Tensor.randn([1, 2, 5, 5], using: &rng), Tensor.randn([3, 2, 3, 3], using: &rng), Tensor.randn([3], using: &rng)]) {
            $0[0].conv2d($0[1], $0[2], stride: 2, padding: 1)
        }
    }

    /// Row selection with repeats: the values are the rows picked, and each row's gradient is
    /// the sum over the places it was picked for.
    func testSelectingRowsPicksAndAccumulates() {
        let x = Tensor((0..<12).map(Float.init), shape: [3, 2, 2], requiresGrad: true)
        let y = x.selectingRows([2, 0, 2])
        XCTAssertEqual(y.shape, [3, 2, 2])
        XCTAssertEqual(y.toArray(), [8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11])
        (y * Tensor([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3], shape: [3, 2, 2])).sum().backward()
        XCTAssertEqual(x.grad!.toArray(), [2, 2, 2, 2, 0, 0, 0, 0, 4, 4, 4, 4])
    }

    /// Chunking over queries must not change attention: a budget that forces 7-row chunks
    /// gives the same outputs and gradients as one chunk.
    func testChunkedAttentionEqualsUnchunked() {
        var rng = SplitMixRandom(seed: 5)
        let q = Tensor.randn([2, 50, 16], using: &rng), k = Tensor.randn([2, 33, 16], using: &rng), v = Tensor.randn([2, 33, 16], using: &rng)
        let g = Tensor.randn([2, 50, 16], using: &rng)
        func run(budget: Int) -> [Tensor] {
            AttentionShape.scoreBudget = budget
            defer { AttentionShape.scoreBudget = AttentionShape.defaultScoreBudget }
            let qs = q.clone(), ks = k.clone(), vs = v.clone()
            for t in [qs, ks, vs] { t.requiresGrad = true }
            let o = Tensor.attention(q: qs, k: ks, v: vs, heads: 4, causal: false)
            o.backward(g)
            return [o, qs.grad!, ks.grad!, vs.grad!]
        }
        let one = run(budget: 1 << 30), chunked = run(budget: 7 * 33)
        for (a, b) in zip(chunked, one) { assertClose(a, b, tol: 1e-5, "chunked vs whole") }
    }

    func testContiguousCopyOfPermutedSlice() {
        let x = Tensor((0..<24).map(Float.init), shape: [2, 3, 4])
        let y = x.permuted([2, 0, 1]).sliced(1, 1..<2).contiguous()
        XCTAssertEqual(y.shape, [4, 1, 3])
        XCTAssertEqual(y.toArray(), [12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23])
    }
}

final class AttentionShapesTests: XCTestCase {
    /// The fused kernel against attention composed from matmul + softmax, at SD's head dim 40
    /// (three 16-column panels, the last partial) and odd query/key counts.
    func testHeadDim40MatchesComposedReference() {
        var rng = SplitMixRandom(seed: 11)
        let (b, l, s, heads, d) = (2, 37, 53, 2, 40)
        let q = Tensor.randn([b, l, heads * d], using: &rng), k = Tensor.randn([b, s, heads * d], using: &rng)
        let v = Tensor.randn([b, s, heads * d], using: &rng)
        let fused = Tensor.attention(q: q, k: k, v: v, heads: heads)
        func split(_ t: Tensor, _ n: Int) -> Tensor { t.reshaped([b, n, heads, d]).permuted([0, 2, 1, 3]) }
        let p = (split(q, l).matmul(split(k, s).transposed()) * (1 / Float(d).squareRoot())).softmax()
        let reference = p.matmul(split(v, s)).permuted([0, 2, 1, 3]).reshaped([b, l, heads * d])
        assertClose(fused, reference, tol: 1e-5, "fused vs composed attention")
    }
}

final class ConvBandTests: XCTestCase {
    /// Convolving in bands of output rows (what bounds im2col memory at 512×512) gives the
    /// same outputs and gradients as one band, for stride 1 and 2.
    func testBandedConvEqualsWhole() {
        var rng = SplitMixRandom(seed: 21)
        for stride in [1, 2] {
            let x = Tensor.randn([1, 3, 11, 9], using: &rng), w = Tensor.randn([4, 3, 3, 3], using: &rng), b = Tensor.randn([4], using: &rng)
            func run(_ budget: Int) -> [Tensor] {
                Conv2dKernel.columnBudget = budget
                defer { Conv2dKernel.columnBudget = Conv2dKernel.defaultColumnBudget }
                let (xs, ws, bs) = (x.clone(), w.clone(), b.clone())
                for t in [xs, ws, bs] { t.requiresGrad = true }
                let y = xs.conv2d(ws, bs, stride: stride, padding: 1)
                var g = SplitMixRandom(seed: 5)
                y.backward(Tensor.randn(y.shape, using: &g))
                return [y, xs.grad!, ws.grad!, bs.grad!]
            }
            let whole = run(1 << 30), banded = run(27 * 9 * 2)   // two output rows per band
            for (a, c) in zip(banded, whole) { assertClose(a, c, tol: 1e-5, "stride \(stride) banded vs whole") }
        }
    }
}

/// The stacked convolution a LoCon'd layer runs (the layer and its adapters' down convolutions
/// in one pass) equals the separate convolutions, forward and backward, with and without bias,
/// at stride 1 and 2, and computes gradients only for what needs them.
final class StackedConvolutionTests: XCTestCase {
    func testStackedEqualsSeparate() {
        var rng = SplitMixRandom(seed: 12)
        for (stride, padding, k, hasBias) in [(1, 1, 3, true), (2, 1, 3, false), (1, 0, 1, true)] {
            let x = Tensor.randn([2, 5, 7, 6], using: &rng); x.requiresGrad = true
            let w = Tensor.randn([4, 5, k, k], using: &rng)
            let b = hasBias ? Tensor.randn([4], using: &rng) : nil
            let d1 = Tensor.randn([2, 5, k, k], using: &rng); d1.requiresGrad = true
            let d2 = Tensor.randn([3, 5, k, k], using: &rng); d2.requiresGrad = true
            let probe = Tensor.randn([2, 9, (7 + 2 * padding - k) / stride + 1, (6 + 2 * padding - k) / stride + 1], using: &rng)
            // Separate: what Conv2d ran before.
            let sep = Tensor.concat([x.conv2d(w, b, stride: stride, padding: padding), x.conv2d(d1, nil, stride: stride, padding: padding),
                                     x.conv2d(d2, nil, stride: stride, padding: padding)], dim: 1)
            (sep * probe).sum().backward()
            let (gx, g1, g2) = (x.grad!.toArray(), d1.grad!.toArray(), d2.grad!.toArray())
            x.grad = nil; d1.grad = nil; d2.grad = nil
            let stacked = x.conv2d(w, b, downs: [d1, d2], stride: stride, padding: padding)
            assertClose(stacked, sep.detached(), tol: 1e-5, "forward s\(stride) k\(k)")
            (stacked * probe).sum().backward()
            assertClose(x.grad!, Tensor(gx, shape: x.shape), tol: 1e-4, "dx s\(stride) k\(k)")
            assertClose(d1.grad!, Tensor(g1, shape: d1.shape), tol: 1e-4, "d down 1")
            assertClose(d2.grad!, Tensor(g2, shape: d2.shape), tol: 1e-4, "d down 2")
            XCTAssertNil(w.grad, "a frozen weight gets no gradient")
        }
    }
}
