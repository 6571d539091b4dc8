// Forward outputs and input gradients of every engine op against PyTorch autograd
// (tools/fixtures/ops.py). Tolerance: fp32, max abs error ≤ 1e-4 × max(1, |reference|).

import XCTest
@testable import Pipeline

final class OpsParityTests: XCTestCase {
    static var fixtures: SafetensorsFile!

    override class func setUp() {
        fixtures = try! Fixtures.file("ops.safetensors")
    }

    func t(_ key: String) -> Tensor { try! Self.fixtures.tensor(key).clone() }

    /// Loads case inputs as leaves, runs `op`, checks output and every input gradient.
    func check(_ name: String, inputs n: Int, tol: Float = 1e-4,
               file: StaticString = #filePath, line: UInt = #line, _ op: ([Tensor]) -> Tensor) {
        let xs = (0..<n).map { i -> Tensor in let x = t("\(name).x\(i)"); x.requiresGrad = true; return x }
        let y = op(xs)
        assertClose(y, t("\(name).out"), tol: tol, "\(name) output", file: file, line: line)
        y.backward(t("\(name).gout"))
        for (i, x) in xs.enumerated() {
            guard let g = x.grad else { XCTFail("\(name): no gradient for input \(i)", file: file, line: line); continue }
            assertClose(g, t("\(name).g\(i)"), tol: tol, "\(name) grad \(i)", file: file, line: line)
        }
    }

    func testElementwise() {
        check("add", inputs: 2) { $0[0] + $0[1] }
        check("sub", inputs: 2) { $0[0] - $0[1] }
        check("mul", inputs: 2) { $0[0] * $0[1] }
        check("div", inputs: 2) { $0[0] / $0[1] }
        check("neg", inputs: 1) { -$0[0] }
        check("exp", inputs: 1) { $0[0].exp() }
        check("log", inputs: 1) { $0[0].log() }
        check("sqrt", inputs: 1) { $0[0].sqrt() }
        check("square", inputs: 1) { $0[0].square() }
        check("maximum", inputs: 2) { Tensor.maximum($0[0], $0[1]) }
        check("mse", inputs: 2) { Tensor.mseLoss($0[0], $0[1]) }
    }

    func testReductions() {
        check("sum_axes", inputs: 1) { $0[0].sum(axes: [0, 2]) }
        check("mean_keep", inputs: 1) { $0[0].mean(axes: [1], keepDim: true) }
        check("var_last", inputs: 1) { $0[0].variance(axes: [-1]) }
        check("var_unbiased", inputs: 1) { $0[0].variance(axes: [0, 1], correction: 1) }
        check("max_axis", inputs: 1) { $0[0].max(axes: [1]) }
        check("sum_all", inputs: 1) { $0[0].sum() }
    }

    func testViews() {
        check("views", inputs: 1) { x in
            x[0].permuted([2, 0, 1]).sliced(0, 1..<3).reshaped([2, 6]) * Tensor((0..<12).map(Float.init), shape: [2, 6])
        }
        check("transpose", inputs: 1) { $0[0].transposed(0, 2).contiguous() * 2 }
        check("expand", inputs: 1) { $0[0].expanded([2, 3, 4]) * Tensor((0..<24).map(Float.init), shape: [2, 3, 4]) }
        check("concat", inputs: 2) { Tensor.concat($0, dim: 1) }
        let ids = try! Self.fixtures.integers("gather.ids")
        check("gather", inputs: 1) { $0[0].gatherRows(ids, shape: [2, 3]) }
    }

    func testMatmul() {
        check("matmul2d", inputs: 2) { $0[0].matmul($0[1]) }
        check("matmul_batched", inputs: 2) { $0[0].matmul($0[1]) }
        check("matmul_bcast", inputs: 2) { $0[0].matmul($0[1]) }
        check("matmul_bcast_left", inputs: 2) { $0[0].matmul($0[1]) }
        check("matmul_transposed", inputs: 2) { $0[0].transposed().matmul($0[1].transposed()) }
        check("linear", inputs: 3) { $0[0].linear($0[1], $0[2]) }
        check("linear_nobias", inputs: 2) { $0[0].linear($0[1], nil) }
    }

    func testConvolution() {
        check("conv3x3", inputs: 3) { $0[0].conv2d($0[1], $0[2], stride: 1, padding: 1) }
        check("conv3x3_s2", inputs: 3) { $0[0].conv2d($0[1], $0[2], stride: 2, padding: 1) }
        check("conv1x1", inputs: 3) { $0[0].conv2d($0[1], $0[2]) }
        check("conv_nobias", inputs: 2) { $0[0].conv2d($0[1], nil) }
        check("conv_k4", inputs: 3) { $0[0].conv2d($0[1], $0[2], stride: 2) }
        check("upsample", inputs: 1) { $0[0].upsampleNearest2x() }
    }

    func testNormsAndSoftmax() {
        check("groupnorm", inputs: 3) { $0[0].groupNorm(groups: 3, weight: $0[1], bias: $0[2]) }
        check("groupnorm_eps6", inputs: 3) { $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2], eps: 1e-6) }
        check("layernorm", inputs: 3) { $0[0].layerNorm(weight: $0[1], bias: $0[2]) }
        check("softmax", inputs: 1) { $0[0].softmax() }
    }

    func testActivations() {
        check("silu", inputs: 1) { $0[0].silu() }
        check("gelu", inputs: 1) { $0[0].gelu() }
        check("gelu_tanh", inputs: 1) { $0[0].geluTanh() }
        check("quick_gelu", inputs: 1) { $0[0].quickGELU() }
        check("sigmoid", inputs: 1) { $0[0].sigmoid() }
    }

    func testCrossEntropy() {
        let targets = try! Self.fixtures.integers("cross_entropy.targets")
        check("cross_entropy", inputs: 1) { $0[0].crossEntropy(targets) }
    }

    func testAttention() {
        check("attention", inputs: 3) { Tensor.attention(q: $0[0], k: $0[1], v: $0[2], heads: 4) }
        check("attention_causal", inputs: 3) { Tensor.attention(q: $0[0], k: $0[1], v: $0[2], heads: 3, causal: true) }
        check("attention_long", inputs: 3) { Tensor.attention(q: $0[0], k: $0[1], v: $0[2], heads: 2) }
    }

    func testAdamWMatchesTorch() {
        let p = t("adamw.p0")
        let grads = t("adamw.grads"), expected = t("adamw.params")
        let opt = AdamW(parameters: [p], config: .init(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1))
        for s in 0..<3 {
            p.grad = grads.sliced(0, s..<(s + 1)).reshaped([10]).clone()
            opt.step()
            assertClose(p, expected.sliced(0, s..<(s + 1)).reshaped([10]), tol: 1e-6, "adamw step \(s + 1)")
        }
    }

    /// Per-parameter learning-rate scales are torch's parameter groups: each parameter steps
    /// (and decays) exactly as an AdamW of its own at lr × scale would — the torch-checked path.
    func testAdamWLearningRateScalesAreParameterGroups() {
        let g = t("adamw.grads")
        let a = t("adamw.p0").clone(), b = t("adamw.p0").clone(), a1 = a.clone(), b1 = b.clone()
        let cfg = AdamW.Config(learningRate: 1e-2, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1)
        let grouped = AdamW(parameters: [a, b], config: cfg, learningRateScales: [1, 5])
        let alone = AdamW(parameters: [a1], config: cfg)
        var five = cfg; five.learningRate = 5e-2
        let faster = AdamW(parameters: [b1], config: five)
        for s in 0..<3 {
            let gs = g.sliced(0, s..<(s + 1)).reshaped([10])
            for p in [a, b, a1, b1] { p.grad = gs.clone() }
            grouped.step(learningRate: 1e-2 * Float(s + 1)); alone.step(learningRate: 1e-2 * Float(s + 1)); faster.step(learningRate: 5e-2 * Float(s + 1))
            assertClose(a, a1, tol: 1e-7, "scale 1, step \(s + 1)")
            assertClose(b, b1, tol: 1e-6, "scale 5, step \(s + 1)")
        }
        XCTAssertNotEqual(a.toArray(), b.toArray())
    }

    func testLearningRateSchedulesMatchDiffusers() {
        let cases: [(String, LearningRateSchedule)] = [
            ("cosine", .cosine(warmup: 10, total: 50)),
            ("linear", .linear(warmup: 10, total: 50)),
            ("constant_warmup", .constantWithWarmup(warmup: 10)),
        ]
        for (name, schedule) in cases {
            let expected = t("lr_\(name).factors").toArray()
            for (step, e) in expected.enumerated() {
                XCTAssertEqual(schedule.factor(at: step), e, accuracy: 1e-6, "\(name) at step \(step)")
            }
        }
    }

    func testWarmupStableDecaySchedule() {
        let s = LearningRateSchedule.warmupStableDecay(warmup: 4, decayStart: 10, total: 20)
        XCTAssertEqual(s.factor(at: 0), 0); XCTAssertEqual(s.factor(at: 2), 0.5)
        XCTAssertEqual(s.factor(at: 4), 1); XCTAssertEqual(s.factor(at: 10), 1)
        XCTAssertEqual(s.factor(at: 15), 1 - Float(0.5).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(s.factor(at: 20), 0); XCTAssertEqual(s.factor(at: 25), 0)
    }

    func testHalfConversions() throws {
        let f = Self.fixtures!
        // fp16/bf16 on disk → fp32 through the reader
        XCTAssertEqual(try f.tensor("half.f16").toArray().map(\.bitPattern), t("half.f16_as_f32").toArray().map(\.bitPattern))
        XCTAssertEqual(try f.tensor("half.bf16").toArray().map(\.bitPattern), t("half.bf16_as_f32").toArray().map(\.bitPattern))
        // fp32 → fp16 / bf16 bits equal torch's .half() / .bfloat16()
        let src = t("half.f32")
        let n = src.count
        var h = [UInt16](repeating: 0, count: n), bf = [UInt16](repeating: 0, count: n)
        h.withUnsafeMutableBufferPointer { HalfConversion.floatToFP16(src.dataPointer, $0.baseAddress!, count: n) }
        bf.withUnsafeMutableBufferPointer { HalfConversion.floatToBF16(src.dataPointer, $0.baseAddress!, count: n) }
        let e16 = try f.entry("half.f16"), ebf = try f.entry("half.bf16")
        let ref16 = (0..<n).map { f.rawPointer(e16).loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) }
        let refbf = (0..<n).map { f.rawPointer(ebf).loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self) }
        XCTAssertEqual(h, ref16)
        XCTAssertEqual(bf, refbf)
    }
}
