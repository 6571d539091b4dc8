import Pipeline
import Foundation
var rng = SplitMixRandom(seed: 1)
func t(_ name: String, flops: Double, n: Int = 20, _ f: () -> Void) { f(); let t0 = Date(); for _ in 0..<n { f() }; let s = Date().timeIntervalSince(t0) / Double(n); print(name, s * 1000, "ms", flops / s / 1e9, "GFLOP/s") }
let x = Tensor.randn([2, 4096, 320], using: &rng)
t("attention", flops: 2.0*2*2*8*4096*4096*40, n: 3) { _ = Tensor.attention(q: x, k: x, v: x, heads: 8) }
