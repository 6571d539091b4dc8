// How much of the World a model's VAE lets through: the judge reads every attribute off World
// renders and off their VAE round trips (encode → posterior mean → decode). A generation can
// only be as legible as its decoder makes it, so the round-trip accuracy of a context
// attribute is the ceiling of that attribute's prompt fidelity (e.g. an expression the decoder
// blurs cannot be followed however well the UNet learns it).

import Foundation

public struct ReconstructionScores: Sendable {
    /// Judge accuracy per attribute on the renders themselves.
    public var original: [WorldAttribute: Double]
    /// Judge accuracy per attribute on the VAE round trips.
    public var reconstructed: [WorldAttribute: Double]
    /// Mean squared error of the round trip, images in [−1, 1].
    public var mse: Double
    public var images: Int
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
        return ReconstructionScores(original: rate(hitsOriginal), reconstructed: rate(hitsRound),
                                    mse: squared / Double(max(elements, 1)), images: count)
    }
}
