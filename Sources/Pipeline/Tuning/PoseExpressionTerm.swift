// The pose/expression term a tuner adds so a tuned character keeps following pose and expression
// words (stage 3 of the multi-stage fine-tune; OneActor's `poseWeight`): each step, `rows` rows
// ask for a random pose and expression — a clean latent of the character noised to a high
// timestep (t ∈ [500, 900): the layout is not yet fixed) under "<prompt>, <pose>, <expression>"
// — and the training judge reads the decoded prediction of the clean image:
//   L_pe = CE(J_pose(D(x̂₀)), pose) + CE(J_expression(D(x̂₀)), expression)
// With `namesView` (stage 3's option) each row also names a random view ("front view", "side
// view") and the judge's view head joins the sum, CE(J_view(D(x̂₀)), view), so an offset at the
// summary tokens (SummaryOffset) cannot drown the view words either.
// Only the training judge (attributes-train) is ever a loss; the evaluation judge never is.

import Foundation

public struct PoseExpressionTerm {
    /// One step's rows: which source latent each noises, the pose and expression it asks for
    /// (indices into Pose/Expression.allCases), its timestep, and the view (View.allCases; nil
    /// when the rows name none).
    public struct Draw {
        public let picks: [Int], poses: [Int], expressions: [Int], timesteps: [Int]
        public var views: [Int]? = nil

        /// Each row's text (`PoseExpressionTerm.text`).
        public func texts(_ prompt: String) -> [String] {
            poses.indices.map { PoseExpressionTerm.text(prompt, pose: poses[$0], expression: expressions[$0], view: views?[$0]) }
        }
    }

    public static let timesteps = 500..<900
    public let judge: AttributeClassifier

    public init(judge: AttributeClassifier) { self.judge = judge }

    /// The text of a row: the prompt with the pose and expression words appended (and the view's).
    public static func text(_ prompt: String, pose: Int, expression: Int, view: Int? = nil) -> String {
        "\(prompt), \(Pose.allCases[pose].word), \(Expression.allCases[expression].word)" + (view.map { ", \(View.allCases[$0].word)" } ?? "")
    }

    /// Every text a row of `prompt` can have (with a view word each when `namesView`).
    public static func allTexts(_ prompt: String, namesView: Bool) -> [String] {
        let views: [Int?] = namesView ? View.allCases.indices.map { $0 } : [nil]
        return Pose.allCases.indices.flatMap { p in
            Expression.allCases.indices.flatMap { e in views.map { text(prompt, pose: p, expression: e, view: $0) } }
        }
    }

    /// `rows` rows over `sources` source latents, from the step's random stream (the views drawn
    /// last, so rows without them take the draws they always took).
    public static func draw(rows: Int, sources: Int, namesView: Bool = false, _ r: inout SplitMixRandom) -> Draw {
        let picks = (0..<rows).map { _ in Int(r.next() % UInt64(sources)) }
        let poses = (0..<rows).map { _ in Int(r.next() % UInt64(Pose.allCases.count)) }
        let expressions = (0..<rows).map { _ in Int(r.next() % UInt64(Expression.allCases.count)) }
        let t = (0..<rows).map { _ in timesteps.lowerBound + Int(r.next() % UInt64(timesteps.count)) }
        let views = namesView ? (0..<rows).map { _ in Int(r.next() % UInt64(View.allCases.count)) } : nil
        return Draw(picks: picks, poses: poses, expressions: expressions, timesteps: t, views: views)
    }

    /// L_pe on the rows' decoded predictions of the clean image (from `decoded`), with the view's
    /// cross-entropy when the rows name one.
    public func loss(decoded: Tensor, draw: Draw) -> Tensor {
        let logits = judge(decoded)
        let pe = logits[.pose]!.crossEntropy(draw.poses) + logits[.expression]!.crossEntropy(draw.expressions)
        guard let views = draw.views else { return pe }
        return pe + logits[.view]!.crossEntropy(views)
    }

    /// D(x̂₀) of the rows, in [−1, 1] (differentiable in `prediction`), for the judge and for
    /// any other term that reads the same images.
    public static func decoded(prediction: Tensor, xt: Tensor, draw: Draw, schedule: NoiseSchedule, vae: AutoencoderKL) -> Tensor {
        let x0 = schedule.predictedOriginal(prediction, xt: xt.detached(), timesteps: draw.timesteps) * (1 / vae.config.scalingFactor)
        return vae.decode(x0).clamped(-1, 1)
    }
}
