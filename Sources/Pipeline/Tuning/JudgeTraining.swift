// Trains an AttributeClassifier on World sprites generated on the fly (never the same
// sample twice: the stream is indexed by step), with light augmentation (±2 px shifts, a
// random softening blur, Gaussian pixel noise) so the judge also reads generated images,
// which are never as clean as renders. Loss: the sum of the attributes' cross-entropies.
// AdamW, warmup + cosine.

import Foundation

public struct JudgeTraining {
    public var worldSeed: UInt64
    public var initSeed: UInt64
    public var steps: Int
    public var batch = 64
    public var learningRate: Float = 2e-3
    /// Weights to start from (fine-tuning a judge after a World change) instead of `initSeed`.
    public var initWeights: String? = nil

    public init(worldSeed: UInt64, initSeed: UInt64, steps: Int) {
        self.worldSeed = worldSeed; self.initSeed = initSeed; self.steps = steps
    }

    /// Trains; `progress(step, loss)` returns false to stop early (the model so far is returned).
    public func run(progress: (Int, Float) -> Bool = { _, _ in true }) throws -> AttributeClassifier {
        let model = try initWeights.map { try AttributeClassifier(weights: WeightReader(paths: [$0])) } ?? AttributeClassifier(seed: initSeed)
        let params = model.namedParameters.map(\.1)
        for p in params { p.requiresGrad = true }
        let opt = AdamW(parameters: params, config: .init(learningRate: learningRate, weightDecay: 1e-4))
        let schedule = LearningRateSchedule.cosine(warmup: max(1, steps / 20), total: steps)
        let world = World(seed: worldSeed)
        var noise = SplitMixRandom(seed: worldSeed ^ 0xA5A5)
        for step in 0..<steps {
            let samples = (0..<batch).map { world.sample(step * batch + $0) }
            let x = augmented(world, samples, &noise)
            let logits = model(x)
            var loss: Tensor? = nil
            for a in WorldAttribute.allCases {
                let l = logits[a]!.crossEntropy(samples.map { a.label($0.identity, $0.scene) })
                loss = loss.map { $0 + l } ?? l
            }
            opt.zeroGrad()
            loss!.backward()
            opt.step(learningRate: schedule.learningRate(base: learningRate, step: step))
            if !progress(step + 1, loss!.item()) { break }
        }
        for p in params { p.requiresGrad = false; p.zeroGrad() }
        return model
    }

    func augmented(_ world: World, _ samples: [WorldSample], _ rng: inout SplitMixRandom) -> Tensor {
        let n = World.imageSize
        let t = Tensor(uninitialized: [samples.count, 3, n, n])
        let p = t.dataPointer
        var clean = [Float](repeating: 0, count: 3 * n * n)
        for (b, s) in samples.enumerated() {
            let px = SpriteRenderer.render(s.identity, s.scene, jitter: Int(rng.next() % 5) - 2)
            let dy = Int(rng.next() % 5) - 2
            for c in 0..<3 {
                for y in 0..<n {
                    let sy = min(max(y - dy, 0), n - 1)
                    for x in 0..<n { clean[(c * n + y) * n + x] = Float(px[(sy * n + x) * 3 + c]) / 127.5 - 1 }
                }
            }
            // Half the samples are softened toward their 3×3 box blur (by a random amount): VAE
            // round trips and generated images lose the crisp single-pixel detail of renders
            // (a face's mouth and brows), and a judge that leans on it misreads them.
            if rng.nextFloat() < 0.5 { Self.soften(&clean, size: n, amount: rng.nextFloat()) }
            let sigma = rng.nextFloat() * 0.08
            for i in 0..<(3 * n * n) {
                let u1 = max(rng.nextFloat(), 1e-7), u2 = rng.nextFloat()
                p[b * 3 * n * n + i] = clean[i] + sigma * (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2)
            }
        }
        return t
    }

    /// Mixes a [3, n, n] image with its 3×3 box blur (edges clamped): (1 − amount)·x + amount·blur(x).
    static func soften(_ img: inout [Float], size n: Int, amount: Float) {
        let src = img
        for c in 0..<3 {
            for y in 0..<n {
                let rows = max(y - 1, 0)...min(y + 1, n - 1)
                for x in 0..<n {
                    let cols = max(x - 1, 0)...min(x + 1, n - 1)
                    var sum: Float = 0
                    for yy in rows { for xx in cols { sum += src[(c * n + yy) * n + xx] } }
                    let i = (c * n + y) * n + x
                    img[i] = (1 - amount) * src[i] + amount * sum / Float(rows.count * cols.count)
                }
            }
        }
    }

    /// Held-out accuracy per attribute on `count` samples of World(seed: evalSeed).
    public static func evaluate(_ model: AttributeClassifier, evalSeed: UInt64, count: Int) -> [WorldAttribute: Double] {
        let world = World(seed: evalSeed)
        var correct: [WorldAttribute: Int] = [:]
        var done = 0
        while done < count {
            let samples = (done..<min(count, done + 100)).map { world.sample($0) }
            let pred = model.predict(WorldBatch.images(world, samples))
            for a in WorldAttribute.allCases {
                for (i, s) in samples.enumerated() where pred[a]![i] == a.label(s.identity, s.scene) { correct[a, default: 0] += 1 }
            }
            done += samples.count
        }
        return Dictionary(uniqueKeysWithValues: WorldAttribute.allCases.map { ($0, Double(correct[$0] ?? 0) / Double(count)) })
    }
}
