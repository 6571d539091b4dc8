// `troupe bench unet --preset sd15|mini`: one classifier-free-guidance UNet evaluation of an SD 1.5
// shaped model (random weights, no download): batch 2, 64×64 latents, 77×768 context — the
// same case tools/bench/torch_unet.py times in PyTorch.

import Foundation

public struct UNetBenchmarkResult: Sendable {
    public let preset: String
    public let secondsPerStep: Double
    public let gflop: Double
    public var gflops: Double { gflop / secondsPerStep }
}

public enum UNetBenchmark {
    public static let presets = ["sd15", "mini"]

    public static func config(_ preset: String) throws -> (UNetConfig, latent: Int, batch: Int) {
        switch preset {
        case "sd15": return (UNetConfig(), 64, 2)
        // troupe-mini: 4 images with guidance = a batch of 8 at 16×16 latents.
        case "mini": return (BaseModelArchitecture.mini.unet, 16, 8)
        default: throw SchedulerError.unsupported("unknown bench preset '\(preset)' (choose: \(presets.joined(separator: ", ")))")
        }
    }

    public static func run(preset: String, repeats: Int = 2, progress: (String) -> Void = { _ in }) throws -> UNetBenchmarkResult {
        let (cfg, latent, batch) = try config(preset)
        let reader = WeightReader(randomSeed: 0)
        progress("building \(preset) UNet with random weights")
        let unet = try UNet2DConditionModel(config: cfg, weights: reader)
        var rng = SplitMixRandom(seed: 1)
        let x = Tensor.randn([batch, cfg.inChannels, latent, latent], using: &rng)
        let ctx = Tensor.randn([batch, 77, cfg.crossAttentionDim], using: &rng)
        let repeats = preset == "sd15" ? repeats : max(repeats, 20)   // small steps: more samples
        return GradMode.noGrad {
            FlopCounter.reset(); FlopCounter.enabled = true
            let t0 = Date()
            _ = unet(x, timesteps: [500], context: ctx)   // warm-up, and the FLOP count
            FlopCounter.enabled = false
            let flops = FlopCounter.flops
            progress(String(format: "warm-up step: %.2f s", Date().timeIntervalSince(t0)))
            var best = Double.infinity
            for i in 0..<repeats {
                let t = Date()
                _ = unet(x, timesteps: [500], context: ctx)
                best = min(best, Date().timeIntervalSince(t))
                progress(String(format: "step %d: %.2f s", i + 1, Date().timeIntervalSince(t)))
            }
            return UNetBenchmarkResult(preset: preset, secondsPerStep: best, gflop: flops / 1e9)
        }
    }
}
