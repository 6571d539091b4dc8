// A linear probe on the text encoder's sentence summary that predicts every attribute a caption
// names — an auxiliary loss for `train-base` (BaseTrainingConfig.captionProbeWeight).
//
// Why (measured on troupe-mini at UNet step 22 500, 3 000 steps after captions began naming
// identity attributes in 45% of cases): swapping a class or pose word changes the text
// encoder's output at every later token (mean ‖Δ‖ 2.9–3.5 over the 77 positions, most of it in
// the end/padding tokens the UNet's cross-attention reads), while swapping "red hair" for "blue
// hair" changes the output at that token only (mean ‖Δ‖ 0.16), and the UNet's ε-loss is equal to
// five decimals with either word. The causal encoder never learned to carry the rarely-seen
// identity words into the summary tokens, so the UNet has nothing to learn them from, and the
// ε-loss gradient through those near-unused paths is a product of near-zero factors. The probe
// asks the summary (the mean output over the end token and the padding after it) to name each
// attribute the caption names; once it does, the UNet, which already reads those tokens, gets a
// direct ε-loss gradient for using it. The probe itself is not part of the exported model.
//
// The probe also names the context words every non-empty caption carries (class, pose,
// expression, background, view), as a separate mean beside the identity term, so five
// always-present labels per caption do not dilute the identity words' gradient. Why: expression
// was the one context word followed less after the identity words came in (built-in 0.88 →
// 0.80). Measured on a branch from step 40 500: that part fitted within ~1 000 steps (the summary
// already carried those words linearly), and expression moved only to 0.81 by step 48 000.

import Foundation

public final class CaptionProbe {
    /// Every attribute in a fixed order, each with its slice of the logits.
    public static let attributes: [WorldAttribute] = WorldAttribute.allCases
    static let offsets: [Int] = { var o = [0]; for a in attributes { o.append(o.last! + a.classes) }; return o }()

    public let linear: Linear
    let optimizer: AdamW
    public var names: [String] { ["probe.weight", "probe.bias"] }

    public init(width: Int, seed: UInt64, learningRate: Float) throws {
        let reader = WeightReader(randomSeed: seed)
        linear = try Linear(reader.scope("probe"), in: width, out: Self.offsets.last!)
        linear.weight.tensor.requiresGrad = true
        linear.bias!.requiresGrad = true
        optimizer = AdamW(parameters: [linear.weight.tensor, linear.bias!], config: .init(learningRate: learningRate))
    }

    /// Weights and AdamW state as checkpoint tensors.
    public var checkpointTensors: [String: Tensor] {
        ["probe.weight": linear.weight.tensor, "probe.bias": linear.bias!,
         "probe_adam.m.weight": optimizer.m[0], "probe_adam.m.bias": optimizer.m[1],
         "probe_adam.v.weight": optimizer.v[0], "probe_adam.v.bias": optimizer.v[1],
         "probe_adam.step": Tensor([Float(optimizer.stepCount)], shape: [1])]
    }

    /// Restores from a checkpoint; false when it holds no probe of this shape (a run that had
    /// none, or the identity-only probe of older runs: it starts fresh).
    public func restore(from file: SafetensorsFile) throws -> Bool {
        guard let entry = file.entries["probe.weight"], entry.shape == linear.weight.tensor.shape else { return false }
        let t = checkpointTensors
        for (k, v) in t where k != "probe_adam.step" { v.assign(try file.tensor(k)) }
        optimizer.restore(step: Int(try file.tensor("probe_adam.step").item()), m: optimizer.m, v: optimizer.v)
        return true
    }

    /// What a World caption names, as probe labels: the identity attributes it spells out and,
    /// with `context` and unless it is empty (the classifier-free-guidance drop), the class and
    /// scene words every other caption carries.
    public static func labels(_ s: WorldSample, context: Bool = true) -> [WorldAttribute: Int] {
        var named = s.namedAttributes.compactMap(WorldAttribute.init(rawValue:))
        if context && !s.caption.isEmpty { named += WorldAttribute.allCases.filter { !$0.isIdentity } }
        return Dictionary(uniqueKeysWithValues: named.map { ($0, $0.label(s.identity, s.scene)) })
    }

    /// Mean cross-entropy over every (caption, named identity attribute) of the batch plus the
    /// same mean over (caption, named context attribute); nil when no caption names anything.
    /// `context` [B, 77, d] is the text encoder's output, `ids` the token ids.
    public func loss(context: Tensor, ids: [[Int]], named: [[WorldAttribute: Int]], endToken: Int) -> Tensor? {
        let b = context.shape[0], n = context.shape[1]
        guard named.contains(where: { !$0.isEmpty }) else { return nil }
        var mask = [Float](repeating: 0, count: b * n)
        for r in 0..<b {
            let end = ids[r].firstIndex(of: endToken) ?? (n - 1)
            for p in end..<n { mask[r * n + p] = 1 / Float(n - end) }
        }
        let summary = (context * Tensor(mask, shape: [b, n, 1])).sum(axes: [1])      // [B, d]
        let logits = linear(summary)                                                 // [B, Σ classes]
        var groups: [Bool: (sum: Tensor, count: Int)] = [:]   // keyed by isIdentity
        for (i, a) in Self.attributes.enumerated() {
            let rows = (0..<b).filter { named[$0][a] != nil }
            guard !rows.isEmpty else { continue }
            let part = logits.sliced(1, Self.offsets[i]..<Self.offsets[i + 1]).selectingRows(rows)
            let ce = part.crossEntropy(rows.map { named[$0][a]! }) * Float(rows.count)
            let g = groups[a.isIdentity]
            groups[a.isIdentity] = (g.map { $0.sum + ce } ?? ce, (g?.count ?? 0) + rows.count)
        }
        let means = groups.values.map { $0.sum * (1 / Float($0.count)) }
        return means.isEmpty ? nil : means.dropFirst().reduce(means[0], +)
    }

    public func zeroGrad() { optimizer.zeroGrad() }
    public func step(learningRate: Float) { optimizer.step(learningRate: learningRate) }
}
