// The identity terms on the shipped model with the shipped IdentityEncoder: OneActor's
// optional identity term and stage 2's, each reported, finite and added to the total with its
// weight. (The fixture pipeline's 16×16 images are too small for the encoder.)

import XCTest
import Pipeline

final class IdentityTermTests: XCTestCase {
    func testOneActorIdentityTermOnTroupeMini() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: DefaultModelTests.folder))
        let encoder = try IdentityEncoder(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/identity/encoder.safetensors").path]))
        var r = pipe.request(prompt: "a knight with red hair"); r.seed = 3; r.steps = 8
        let cluster = try OneActorCluster.build(pipeline: pipe, request: r, baseWord: "knight", targetImage: nil, auxiliaries: 2, model: pipe.fingerprint)
        var c = OneActorConfig(); c.steps = 2; c.identityWeight = 0.5; c.identityMaxTimestep = 1000; c.auxiliariesPerBatch = 2
        let dir = NSTemporaryDirectory() + "troupe-oa-id-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try OneActorTuner(pipeline: pipe, cluster: cluster, config: c, directory: dir)) { XCTAssertTrue("\($0)".contains("IdentityEncoder")) }
        let t = try OneActorTuner(pipeline: pipe, cluster: cluster, config: c, directory: dir, identityEncoder: encoder)
        let l = try t.trainStep().losses
        let id = try XCTUnwrap(l["identity"])
        XCTAssertTrue(id.isFinite && id >= 0 && id <= 2, "\(id)")
        XCTAssertEqual(l["loss"]!, l["target"]! + 0.5 * l["aux"]! + 0.2 * l["average"]! + 0.5 * id, accuracy: 1e-4)
    }

    /// OneActor's pose/expression term at the summary site: reported, finite, weighed into the
    /// total, refused without the judge; the paper's terms draw what they drew without it.
    func testOneActorPoseExpressionTerm() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: DefaultModelTests.folder))
        let judge = try AttributeClassifier(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/judges/attributes-train.safetensors").path]))
        var r = pipe.request(prompt: "a knight with red hair"); r.seed = 3; r.steps = 8
        let cluster = try OneActorCluster.build(pipeline: pipe, request: r, baseWord: "knight", targetImage: nil, auxiliaries: 2, model: pipe.fingerprint)
        var c = OneActorConfig(); c.steps = 2; c.auxiliariesPerBatch = 2; c.offsetSite = .summary; c.poseWeight = 0.3
        let dir = NSTemporaryDirectory() + "troupe-oa-pose-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertThrowsError(try OneActorTuner(pipeline: pipe, cluster: cluster, config: c, directory: dir)) { XCTAssertTrue("\($0)".contains("judge")) }
        let t = try OneActorTuner(pipeline: pipe, cluster: cluster, config: c, directory: dir, judge: judge)
        var off = c; off.poseWeight = 0
        let plain = try OneActorTuner(pipeline: pipe, cluster: cluster, config: off, directory: dir + "/off")
        let l = try t.trainStep().losses, p = try plain.trainStep().losses
        let pe = try XCTUnwrap(l["pose_expression"])
        XCTAssertTrue(pe.isFinite && pe > 0, "\(pe)")
        XCTAssertNil(p["pose_expression"])
        XCTAssertEqual(l["target"]!, p["target"]!, accuracy: 0, "the paper's rows are the same draws")
        XCTAssertEqual(l["loss"]!, l["target"]! + 0.5 * l["aux"]! + 0.2 * l["average"]! + 0.3 * pe, accuracy: 1e-4)
        // With the identity term too, it reads the target row and the pose rows; both weighed in.
        let encoder = try IdentityEncoder(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/identity/encoder.safetensors").path]))
        var both = c; both.identityWeight = 5; both.identityMaxTimestep = 0     // the target row never: only the pose rows
        let t2 = try OneActorTuner(pipeline: pipe, cluster: cluster, config: both, directory: dir + "/both", identityEncoder: encoder, judge: judge)
        let l2 = try t2.trainStep().losses
        let id = try XCTUnwrap(l2["identity"], "the pose rows carry the identity term")
        XCTAssertTrue(id.isFinite && id >= 0 && id <= 2, "\(id)")
        XCTAssertEqual(l2["loss"]!, l2["target"]! + 0.5 * l2["aux"]! + 0.2 * l2["average"]! + 0.3 * l2["pose_expression"]! + 5 * id, accuracy: 1e-4)
    }
}

final class Stage2TermTests: XCTestCase {
    /// Stage 2 on troupe-mini: the identity term reaches every timestep by default (each step
    /// reports it and weighs it into the total); with identityMaxTimestep 0 no row gets it.
    func testIdentityTermAtEveryTimestep() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: DefaultModelTests.folder))
        let encoder = try IdentityEncoder(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/identity/encoder.safetensors").path]))
        var r = pipe.request(prompt: "a knight with red hair"); r.seed = 3; r.steps = 8
        let ref = WorldBatch.tensor(rgb8: [try pipe.generate(r).images[0]], size: 64)
        var c = AppearanceTuningConfig.stage2(from: AppearanceTuningConfig(), hasIdentityEncoder: true)
        c.priorWeight = 0; c.steps = 3
        XCTAssertEqual(c.identityMaxTimestep, 1000)
        let dir = NSTemporaryDirectory() + "troupe-stage2-id-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight with red hair", config: c, directory: dir, identityEncoder: encoder)
        for _ in 0..<3 {
            let l = try t.trainStep().losses
            let id = try XCTUnwrap(l["identity"])
            XCTAssertTrue(id.isFinite && id >= 0 && id <= 2, "\(id)")
            XCTAssertEqual(l["loss"]!, l["eps"]! + c.reconstructionWeight * (l["recon"] ?? 0) + c.identityWeight * id, accuracy: 1e-4)
        }
        c.identityMaxTimestep = 0
        let none = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight with red hair", config: c, directory: dir + "/0", identityEncoder: encoder)
        for _ in 0..<3 { XCTAssertNil(try none.trainStep().losses["identity"]) }
    }
}

final class Stage3TermTests: XCTestCase {
    /// Stage 3 on troupe-mini: the training judge's pose/expression term is reported, finite,
    /// and weighted into the total; without a judge the config is refused.
    /// Rows that also name a view: the same picks, poses, expressions and timesteps as rows
    /// without (the views drawn last), the view word in the text, and the judge's view
    /// cross-entropy added to the pose and expression ones.
    func testPoseExpressionTermNamingTheView() throws {
        var a = SplitMixRandom(seed: 5), b = SplitMixRandom(seed: 5)
        let plain = PoseExpressionTerm.draw(rows: 6, sources: 3, &a)
        let viewed = PoseExpressionTerm.draw(rows: 6, sources: 3, namesView: true, &b)
        XCTAssertNil(plain.views)
        XCTAssertEqual(viewed.picks, plain.picks); XCTAssertEqual(viewed.poses, plain.poses)
        XCTAssertEqual(viewed.expressions, plain.expressions); XCTAssertEqual(viewed.timesteps, plain.timesteps)
        let views = try XCTUnwrap(viewed.views)
        XCTAssertTrue(views.allSatisfy { View.allCases.indices.contains($0) })
        let texts = viewed.texts("a knight")
        for i in 0..<6 {
            XCTAssertEqual(texts[i], "a knight, \(Pose.allCases[plain.poses[i]].word), \(Expression.allCases[plain.expressions[i]].word), \(View.allCases[views[i]].word)")
            XCTAssertTrue(PoseExpressionTerm.allTexts("a knight", namesView: true).contains(texts[i]))
        }
        XCTAssertEqual(plain.texts("a knight")[0], PoseExpressionTerm.text("a knight", pose: plain.poses[0], expression: plain.expressions[0]))
        XCTAssertEqual(PoseExpressionTerm.allTexts("a knight", namesView: true).count, Pose.allCases.count * Expression.allCases.count * View.allCases.count)
        let judge = try AttributeClassifier(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/judges/attributes-train.safetensors").path]))
        var r = SplitMixRandom(seed: 9)
        let images = Tensor.randn([6, 3, 64, 64], using: &r).clamped(-1, 1)
        let term = PoseExpressionTerm(judge: judge)
        let logits = judge(images)
        XCTAssertEqual(term.loss(decoded: images, draw: viewed).item(),
                       term.loss(decoded: images, draw: plain).item() + logits[.view]!.crossEntropy(views).item(), accuracy: 1e-4)
    }

    func testPoseExpressionTerm() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: DefaultModelTests.folder))
        let judge = try AttributeClassifier(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/judges/attributes-train.safetensors").path]))
        var r = pipe.request(prompt: "a knight with red hair"); r.seed = 3; r.steps = 8
        let out = try pipe.generate(r)
        let ref = WorldBatch.tensor(rgb8: [out.images[0]], size: 64)
        var c = AppearanceTuningConfig.stage3(from: AppearanceTuningConfig.stage2(from: AppearanceTuningConfig()))
        c.identityWeight = 0; c.priorWeight = 0; c.steps = 2
        let dir = NSTemporaryDirectory() + "troupe-stage3-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let t = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight with red hair", config: c, directory: dir, judge: judge)
        XCTAssertEqual(t.phase, "stage3")
        let l = try t.trainStep().losses
        let pe = try XCTUnwrap(l["pose_expression"])
        XCTAssertTrue(pe.isFinite && pe > 0)
        XCTAssertEqual(l["loss"]!, l["eps"]! + c.reconstructionWeight * (l["recon"] ?? 0) + c.poseWeight * pe, accuracy: 1e-4)
        XCTAssertNil(l["identity_pose"], "no identity term without its weight")
        // Rows naming a view too, with the summary offset (every row text has its positions); the
        // option survives the run's saved config.
        var viewed = c; viewed.poseRowsNameView = true; viewed.summaryOffsetLearningRateScale = 30
        let tv = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight with red hair", config: viewed, directory: dir + "/view",
                                     judge: judge, baseWord: "knight")
        for _ in 0..<2 { XCTAssertTrue(try XCTUnwrap(try tv.trainStep().losses["pose_expression"]).isFinite) }
        let decoded = try JSONDecoder().decode(AppearanceTuningConfig.self, from: JSONEncoder().encode(viewed))
        XCTAssertTrue(decoded.poseRowsNameView)
        XCTAssertFalse(try JSONDecoder().decode(AppearanceTuningConfig.self, from: Data("{}".utf8)).poseRowsNameView, "runs from before it name no view")
        // With stage 2's identity term on, the pose rows get it too (the character under other context words).
        let encoder = try IdentityEncoder(weights: WeightReader(paths: [TroupeRun.repo.appendingPathComponent("models/identity/encoder.safetensors").path]))
        var withID = c; withID.identityWeight = 0.3
        let t2 = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight with red hair", config: withID, directory: dir + "/id",
                                     identityEncoder: encoder, judge: judge)
        let l2 = try t2.trainStep().losses
        let idPose = try XCTUnwrap(l2["identity_pose"])
        XCTAssertTrue(idPose.isFinite && idPose >= 0 && idPose <= 2, "\(idPose)")
        XCTAssertEqual(l2["loss"]!, l2["eps"]! + withID.reconstructionWeight * (l2["recon"] ?? 0) + 0.3 * (l2["identity"] ?? 0)
                       + withID.poseWeight * l2["pose_expression"]! + 0.3 * idPose, accuracy: 1e-4)
    }
}
