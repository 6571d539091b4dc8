// How much of the World a model's VAE lets through: the judge reads every attribute off World
// renders and off their VAE round trips (encode → posterior mean → decode). A generation can
// only be as legible as its decoder makes it, so the round-trip accuracy of a context
// attribute is the ceiling of that attribute's prompt fidelity (e.g. an expression the decoder
// blurs cannot be followed however well the UNet learns it).
// Also the encoder's latent sensitivity to each context attribute: ‖Δz‖² / ‖Δx‖² between a
// render and the same render with only that attribute changed, z the scaled latent the UNet
// models. ε-MSE rewards knowing a caption word in proportion to the latent change the word
// explains, so an attribute the encoder squeezes into a small Δz is learned last (troupe-mini:
// expression 0.026 against pose 0.12 and background 0.11 — 80 units of pixel change became 2.1
// of latent change, where pose's 370 became 46).

import Foundation

public struct ReconstructionScores: Sendable {
    /// Judge accuracy per attribute on the renders themselves.
    public var original: [WorldAttribute: Double]
    /// Judge accuracy per attribute on the VAE round trips.
    public var reconstructed: [WorldAttribute: Double]
    /// Mean squared error of the round trip, images in [−1, 1].
    public var mse: Double
    public var images: Int
    /// Σ‖Δz‖² / Σ‖Δx‖² per context attribute (pose, expression, background, view).
    public var latentSensitivity: [WorldAttribute: Double] = [:]
    /// Mean ‖Δz‖² (scaled latent) per changed pair: what ε-MSE can gain by following the word.
    public var latentChange: [WorldAttribute: Double] = [:]
}

public struct ReconstructionCeiling {
    public let vae: AutoencoderKL
    public let judge: AttributeClassifier
    public init(vae: AutoencoderKL, judge: AttributeClassifier) { self.vae = vae; self.judge = judge }

    /// Scores `count` samples of World(`worldSeed`) (a seed no model or judge trained on).
    public func measure(worldSeed: UInt64 = 5150, count: Int = 512, batch: Int = 32) -> ReconstructionScores {
        let world = World(seed: worldSeed)
        var hitsOriginal: [WorldAttribute: Int] = [:], hitsRound: [WorldAttribute: Int] = [:]
        var squared = 0.0, elements = 0
        GradMode.noGrad {
            for start in stride(from: 0, to: count, by: batch) {
                let samples = (start..<min(count, start + batch)).map { world.sample($0) }
                let x = WorldBatch.images(world, samples)
                let recon = vae.decode(vae.encode(x).mean).contiguous()
                let p = recon.dataPointer, xp = x.contiguous().dataPointer
                for i in 0..<recon.count { let d = Double(p[i] - xp[i]); squared += d * d }
                elements += recon.count
                // The judge reads what a user would save: 8-bit pixels.
                let quantised = WorldBatch.tensor(rgb8: recon.rgb8Images(), size: recon.shape[2])
                let before = judge.predict(x), after = judge.predict(quantised)
                for (b, s) in samples.enumerated() {
                    for a in WorldAttribute.allCases {
                        let want = a.label(s.identity, s.scene)
                        if before[a]![b] == want { hitsOriginal[a, default: 0] += 1 }
                        if after[a]![b] == want { hitsRound[a, default: 0] += 1 }
                    }
                }
            }
        }
        func rate(_ h: [WorldAttribute: Int]) -> [WorldAttribute: Double] {
            Dictionary(uniqueKeysWithValues: WorldAttribute.allCases.map { ($0, Double(h[$0] ?? 0) / Double(count)) })
        }
        var scores = ReconstructionScores(original: rate(hitsOriginal), reconstructed: rate(hitsRound),
                                          mse: squared / Double(max(elements, 1)), images: count)
        (scores.latentSensitivity, scores.latentChange) = latentSensitivity(worldSeed: worldSeed, count: min(count, 64))
        return scores
    }

    /// For each of the first `count` samples, every other value of each context attribute:
    /// Σ‖Δz‖² / Σ‖Δx‖² and the mean ‖Δz‖² per pair, per attribute.
    public func latentSensitivity(worldSeed: UInt64, count: Int) -> (ratio: [WorldAttribute: Double], change: [WorldAttribute: Double]) {
        let world = World(seed: worldSeed)
        let scale = vae.config.scalingFactor
        var latent: [WorldAttribute: Double] = [:], pixel: [WorldAttribute: Double] = [:], pairs: [WorldAttribute: Int] = [:]
        func variants(_ s: SceneContext) -> [(WorldAttribute, SceneContext)] {
            var out: [(WorldAttribute, SceneContext)] = []
            for v in Pose.allCases where v != s.pose { var c = s; c.pose = v; out.append((.pose, c)) }
            for v in Expression.allCases where v != s.expression { var c = s; c.expression = v; out.append((.expression, c)) }
            for v in Background.allCases where v != s.background { var c = s; c.background = v; out.append((.background, c)) }
            for v in View.allCases where v != s.view { var c = s; c.view = v; out.append((.view, c)) }
            return out
        }
        GradMode.noGrad {
            for i in 0..<count {
                let s = world.sample(i)
                let changed = variants(s.scene)
                let x = WorldBatch.tensor(rgb8: [World.render(s.identity, s.scene)] + changed.map { World.render(s.identity, $0.1) },
                                          size: World.imageSize).contiguous()
                let z = vae.encode(x).mean.contiguous()
                let zp = z.dataPointer, xp = x.dataPointer
                let nz = z.count / z.shape[0], nx = x.count / x.shape[0]
                for (k, (attribute, _)) in changed.enumerated() {
                    var dz = 0.0, dx = 0.0
                    for j in 0..<nz { let d = Double((zp[(k + 1) * nz + j] - zp[j]) * scale); dz += d * d }
                    for j in 0..<nx { let d = Double(xp[(k + 1) * nx + j] - xp[j]); dx += d * d }
                    latent[attribute, default: 0] += dz; pixel[attribute, default: 0] += dx; pairs[attribute, default: 0] += 1
                }
            }
        }
        return (Dictionary(uniqueKeysWithValues: latent.map { ($0.key, $0.value / max(pixel[$0.key]!, 1e-12)) }),
                Dictionary(uniqueKeysWithValues: latent.map { ($0.key, $0.value / Double(pairs[$0.key]!)) }))
    }
}
