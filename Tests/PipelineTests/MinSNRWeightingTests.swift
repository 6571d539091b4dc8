import XCTest
@testable import Pipeline

/// Min-SNR-γ weighting against diffusers (tools/fixtures/min_snr.py): compute_snr and the
/// training scripts' weights for every prediction type, and the weighted loss.
final class MinSNRWeightingTests: XCTestCase {
    func testWeightsAndLossMatchDiffusers() throws {
        let r = try Fixtures.file("min-snr.safetensors")
        let t = try r.tensor("timesteps").toArray().map { Int($0) }
        let pred = try r.tensor("pred"), target = try r.tensor("target")
        for prediction in ["epsilon", "v_prediction", "sample"] {
            var cfg = SchedulerConfig.stableDiffusion1
            cfg.predictionType = prediction
            let schedule = try NoiseSchedule(cfg)
            for gamma in [1, 5] {
                let want = try r.tensor("weights.\(prediction).g\(gamma)").toArray()
                let got = schedule.minSNRWeights(timesteps: t, gamma: Float(gamma))
                for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-5 * max(1, abs(w)), "\(prediction) γ \(gamma)") }
            }
            let loss = Tensor.mseLoss(pred, target, rowWeights: schedule.minSNRWeights(timesteps: t, gamma: 5)).item()
            XCTAssertEqual(loss, try r.tensor("loss.\(prediction).g5").item(), accuracy: 1e-5 * max(1, abs(loss)), prediction)
        }
    }

    /// The weighted loss's gradient is the plain MSE's scaled row by row.
    func testWeightedLossGradient() throws {
        var rng = SplitMixRandom(seed: 3)
        let a = Tensor.randn([2, 3, 2, 2], using: &rng), b = Tensor.randn([2, 3, 2, 2], using: &rng)
        a.requiresGrad = true
        Tensor.mseLoss(a, b, rowWeights: [0.25, 2]).backward()
        let g = try XCTUnwrap(a.grad).toArray(), diff = (a - b).detached().toArray()
        for i in 0..<g.count {
            let w: Float = i < 12 ? 0.25 : 2
            XCTAssertEqual(g[i], w * 2 * diff[i] / 24, accuracy: 1e-6)
        }
    }
}
