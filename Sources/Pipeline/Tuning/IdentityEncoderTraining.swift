// Trains the IdentityEncoder on the World, contrastively (InfoNCE, as SimCLR/CLIP): each step
// draws B identities and two scenes for each (another pose, expression, background, view),
// renders both with the judge's augmentation (jitter, softening, noise — VAE round trips and
// generations are softer than renders), embeds them, and asks each first view to pick its own
// second view among the B (and the reverse):
//   logits = e₁·e₂ᵀ / τ,  L = ½ (CE(logits, diag) + CE(logitsᵀ, diag)).
// Identities and scenes are functions of (world seed, step), so a run is reproducible.

import Foundation

public struct IdentityEncoderTraining {
    public var worldSeed: UInt64 = 3003
    public var initSeed: UInt64 = 3
    public var steps = 3000
    public var batch = 48
    public var temperature: Float = 0.1
    public var learningRate: Float = 2e-3
    public init() {}

    /// Trains; `progress(step, loss)` returns false to stop early.
    public func run(progress: (Int, Float) -> Bool = { _, _ in true }) throws -> IdentityEncoder {
        let model = try IdentityEncoder(seed: initSeed)
        let params = model.namedParameters.map(\.1)
        for p in params { p.requiresGrad = true }
        let opt = AdamW(parameters: params, config: .init(learningRate: learningRate, weightDecay: 1e-4))
        let schedule = LearningRateSchedule.cosine(warmup: max(1, steps / 20), total: steps)
        let judgeAugment = JudgeTraining(worldSeed: worldSeed, initSeed: initSeed, steps: 0)
        let world = World(seed: worldSeed)
        var noise = SplitMixRandom(seed: worldSeed ^ 0x5A5A)
        for step in 0..<steps {
            var r = SplitMixRandom(seed: worldSeed &* 0x9E37_79B9 &+ UInt64(step))
            let ids = (0..<batch).map { _ in World.randomIdentity(&r) }
            let views = (0..<2).map { _ in ids.map { WorldSample(index: 0, identity: $0, scene: World.randomScene(&r), caption: "", namedAttributes: []) } }
            let e1 = model(judgeAugment.augmented(world, views[0], &noise)), e2 = model(judgeAugment.augmented(world, views[1], &noise))
            let logits = e1.matmul(e2.transposed()) * (1 / temperature)
            let diag = Array(0..<batch)
            let loss = (logits.crossEntropy(diag) + logits.transposed().contiguous().crossEntropy(diag)) * 0.5
            opt.zeroGrad()
            loss.backward()
            opt.step(learningRate: schedule.learningRate(base: learningRate, step: step))
            if !progress(step + 1, loss.item()) { break }
        }
        for p in params { p.requiresGrad = false; p.zeroGrad() }
        return model
    }

    /// Top-1 identity retrieval on held-out World characters: `count` identities, one gallery
    /// render and one query render each in two independent scenes; a query is right when its
    /// nearest gallery vector (cosine) is its own identity's. `transform` maps the query
    /// images first (e.g. a VAE round trip).
    public static func retrieval(_ model: IdentityEncoder, evalSeed: UInt64, count: Int,
                                 transform: (Tensor) -> Tensor = { $0 }) -> Double {
        var r = SplitMixRandom(seed: evalSeed)
        let ids = (0..<count).map { _ in World.randomIdentity(&r) }
        let gallery = ids.map { World.render($0, World.randomScene(&r)) }
        let queries = ids.map { World.render($0, World.randomScene(&r)) }
        func embed(_ images: [[UInt8]], _ f: (Tensor) -> Tensor) -> [[Float]] {
            stride(from: 0, to: images.count, by: 64).flatMap { s -> [[Float]] in
                let part = Array(images[s..<min(images.count, s + 64)])
                let e = model.embed(f(WorldBatch.tensor(rgb8: part, size: World.imageSize))).toArray()
                let d = IdentityEncoder.dimension
                return (0..<part.count).map { b in Array(e[(b * d)..<((b + 1) * d)]) }
            }
        }
        let g = embed(gallery, { $0 }), q = embed(queries, transform)
        var right = 0
        for (i, v) in q.enumerated() {
            let best = g.indices.max { a, b in zip(v, g[a]).reduce(0) { $0 + $1.0 * $1.1 } < zip(v, g[b]).reduce(0) { $0 + $1.0 * $1.1 } }!
            if best == i { right += 1 }
        }
        return Double(right) / Double(max(1, count))
    }
}
