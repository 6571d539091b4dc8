// OneActor against PyTorch (tools/fixtures/oneactor.py): the projector's forward and backward on
// two map sizes, the three-term loss, cluster and classifier-free guidance on fixture tensors;
// then end to end on the tiny random SD 1.x pipelines (ε-prediction "a", v-prediction "b"):
// cluster data, a few tuning steps that lower the loss, resume equal to an uninterrupted run,
// v = 0 equal to plain generation, and data from another model refused by name.

import XCTest
@testable import Pipeline

final class OneActorTests: XCTestCase {
    func close(_ a: Tensor, _ b: Tensor, _ what: String, tol: Float = 1e-4) {
        XCTAssertEqual(a.shape, b.shape, what)
        let x = a.toArray(), y = b.toArray()
        let scale = max(y.map(abs).max() ?? 1, 1e-6)
        let err = zip(x, y).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(err, tol * scale, "\(what): max abs error \(err), reference max \(scale)")
    }

    func testProjectorForwardAndBackwardMatchPyTorch() throws {
        let f = try Fixtures.file("oneactor.safetensors")
        for (name, side) in [("projector", 4), ("projector3", 3)] {
            let prefix = name + ".w."
            let reader = WeightReader(files: [f]) { $0.hasPrefix(prefix) ? String($0.dropFirst(prefix.count)) : nil }
            let p = try Projector(config: ProjectorConfig(inChannels: 16, inSize: side, outDim: 24), weights: reader)
            for (_, t) in p.namedParameters { t.requiresGrad = true; t.zeroGrad() }
            let h = try f.tensor(name + ".h").clone()
            h.requiresGrad = true
            let out = p(h)
            close(out, try f.tensor(name + ".out"), "\(name) forward")
            (out * (try f.tensor(name + ".R"))).sum().backward()
            close(h.grad!, try f.tensor(name + ".grad_h"), "\(name) ∂/∂h", tol: 1e-3)
            let named = Dictionary(uniqueKeysWithValues: p.namedParameters)
            close(named["stem.conv.weight"]!.grad!, try f.tensor(name + ".grad_stem_conv"), "\(name) ∂/∂stem.conv", tol: 1e-3)
            close(named["proj.weight"]!.grad!, try f.tensor(name + ".grad_proj"), "\(name) ∂/∂proj", tol: 1e-3)
        }
    }

    func testLossAndGuidanceFormulasMatchPyTorch() throws {
        let f = try Fixtures.file("oneactor.safetensors")
        let l = try f.tensor("loss.lambdas").toArray()
        let terms = OneActorLoss.terms(try f.tensor("loss.pred"), try f.tensor("loss.target"), lambda1: l[0], lambda2: l[1])
        XCTAssertEqual(terms.total.item(), try f.tensor("loss.value").item(), accuracy: 1e-5)
        let p = try f.tensor("guidance.params").toArray()
        let outputs: [GuidanceBranch: Tensor] = [.unconditional: try f.tensor("guidance.u"), .conditional: try f.tensor("guidance.t"),
                                                 .auxiliary: try f.tensor("guidance.a")]
        let cluster = ClusterGuidance(eta1: p[0], eta2: p[1], steps: 0..<10, outsideScale: p[2])
        XCTAssertEqual(cluster.branches(atStep: 3, of: 20), [.unconditional, .conditional, .auxiliary])
        close(cluster.combine(outputs, atStep: 3, of: 20), try f.tensor("guidance.cluster"), "cluster guidance")
        // Outside its steps: classifier-free guidance on the prompt without the offset (the
        // public code's prompt_embeds_origin), no auxiliary row.
        XCTAssertEqual(cluster.branches(atStep: 12, of: 20), [.unconditional, .plain])
        let plainOutputs: [GuidanceBranch: Tensor] = [.unconditional: try f.tensor("guidance.u"), .plain: try f.tensor("guidance.t")]
        close(cluster.combine(plainOutputs, atStep: 12, of: 20), try f.tensor("guidance.cfg"), "outside the range")
        close(ClassifierFreeGuidance(scale: p[2]).combine(outputs, atStep: 0, of: 1), try f.tensor("guidance.cfg"), "classifier-free")
        // η2 = 0: the auxiliary branch is not evaluated; scale ≤ 1: only the prompt (as diffusers).
        XCTAssertEqual(ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<5, outsideScale: 5).branches(atStep: 0, of: 5), [.unconditional, .conditional])
        XCTAssertEqual(ClassifierFreeGuidance(scale: 1).branches(atStep: 0, of: 5), [.conditional])
    }

    func pipeline(_ config: String) throws -> StableDiffusionPipeline {
        try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/\(config)").path))
    }

    func cluster(_ pipe: StableDiffusionPipeline, _ size: Int) throws -> OneActorCluster {
        var r = GenerationRequest(prompt: "a knight with a red sword")
        r.steps = 4; r.guidanceScale = 5; r.width = size; r.height = size; r.seed = 21
        return try OneActorCluster.build(pipeline: pipe, request: r, baseWord: "knight", targetImage: nil, auxiliaries: 4, model: pipe.fingerprint)
    }

    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "troupe-oneactor-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// On both tiny pipelines (ε and v prediction, widths 16 and 32 of text): tuning lowers the
    /// loss on fixed batches, and a run stopped and resumed ends where an uninterrupted one does.
    func testTuningLowersTheLossAndResumesExactly() throws {
        for (config, size) in [("a", 16), ("b", 32)] {
            let pipe = try pipeline(config)
            let c = try cluster(pipe, size)
            XCTAssertEqual(c.latents.shape[0], 5)
            XCTAssertEqual(c.features.shape[1], pipe.unet.config.blockOutChannels.last!)
            var cfg = OneActorConfig(); cfg.steps = 30; cfg.learningRate = 3e-3; cfg.checkpointEvery = 10
            let dir = tempDir()
            let t = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: dir)
            let probe = Array(0..<12)
            let before = probe.map { t.loss(atStep: $0) }.reduce(0, +)
            try TrainingLoop.run(t) { _ in true }
            let after = probe.map { t.loss(atStep: $0) }.reduce(0, +)
            XCTAssertLessThan(after, before, "config \(config): tuning lowers the loss on fixed batches")

            // Stopped after 13 steps, then resumed: the same projector as the uninterrupted run.
            let dir2 = tempDir()
            let a = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: dir2)
            try TrainingLoop.run(a) { e in !(e.kind == .step && e.step == 13) }
            XCTAssertEqual(a.stepsDone, 13)
            let b = try OneActorTuner.resume(pipeline: pipe, cluster: c, directory: dir2)
            XCTAssertEqual(b.stepsDone, 13)
            try TrainingLoop.run(b) { _ in true }
            for ((n1, x), (n2, y)) in zip(t.projector.namedParameters, b.projector.namedParameters) {
                XCTAssertEqual(n1, n2)
                XCTAssertEqual(x.toArray(), y.toArray(), "config \(config): \(n1) after resume")
            }
        }
    }

    /// v = 0 with η1 = the guidance scale and η2 = 0 is the base model, bit for bit; v > 0 changes
    /// the image; files made for one model are refused by another by name.
    func testSamplingWithTheAdapter() throws {
        let pipe = try pipeline("a")
        let c = try cluster(pipe, 16)
        var cfg = OneActorConfig(); cfg.steps = 3
        let t = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: tempDir())
        try TrainingLoop.run(t) { _ in true }
        let adapter = OneActorAdapter(projector: t.projector, cluster: c)
        var r = GenerationRequest(prompt: "a knight waving")
        r.steps = 4; r.guidanceScale = 5; r.width = 16; r.height = 16; r.seed = 3; r.count = 2
        let plain = try pipe.generate(r).latents.toArray()
        let guidance = ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<4, outsideScale: 5)
        let zero = try adapter.conditioning(for: r, pipeline: pipe, v: 0)
        XCTAssertEqual(try pipe.generate(r, conditioning: zero, guidance: guidance).latents.toArray(), plain)
        let tuned = try adapter.conditioning(for: r, pipeline: pipe, v: 1)
        XCTAssertNotEqual(try pipe.generate(r, conditioning: tuned, guidance: guidance).latents.toArray(), plain)
        let withExclusion = ClusterGuidance(eta1: 5, eta2: 1.5, steps: 0..<2, outsideScale: 5)
        XCTAssertNoThrow(try pipe.generate(r, conditioning: tuned, guidance: withExclusion))
        // Outside the guidance steps the prompt goes without δ: an empty range is the base
        // model bit for bit, the first two steps only something between.
        let never = ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<0, outsideScale: 5)
        XCTAssertEqual(try pipe.generate(r, conditioning: tuned, guidance: never).latents.toArray(), plain)
        let early = try pipe.generate(r, conditioning: tuned, guidance: ClusterGuidance(eta1: 5, eta2: 0, steps: 0..<2, outsideScale: 5)).latents.toArray()
        XCTAssertNotEqual(early, plain)
        XCTAssertNotEqual(early, try pipe.generate(r, conditioning: tuned, guidance: guidance).latents.toArray())
        // A prompt without the base word is a clear error.
        XCTAssertThrowsError(try adapter.conditioning(for: GenerationRequest(prompt: "a wizard"), pipeline: pipe, v: 1)) { e in
            XCTAssertTrue("\(e)".contains("knight"), "\(e)")
        }
        // Files name their model.
        let dir = tempDir()
        try c.save(to: dir + "/cluster.safetensors")
        try t.saveProjector(to: dir + "/projector.safetensors")
        XCTAssertNoThrow(try OneActorCluster.load(path: dir + "/cluster.safetensors", model: pipe.fingerprint))
        let other = try pipeline("b").fingerprint
        XCTAssertNotEqual(other, pipe.fingerprint)
        XCTAssertThrowsError(try OneActorCluster.load(path: dir + "/cluster.safetensors", model: other)) { e in
            XCTAssertTrue("\(e)".contains("was made with model"), "\(e)")
        }
        XCTAssertThrowsError(try OneActorAdapter.loadProjector(path: dir + "/projector.safetensors", model: other))
        let (loaded, site) = try OneActorAdapter.loadProjector(path: dir + "/projector.safetensors", model: pipe.fingerprint)
        XCTAssertEqual(site, .output)
        // The saved projector is the one the run ends with (what eval measures).
        XCTAssertEqual(GradMode.noGrad { loaded(c.features) }.toArray(), GradMode.noGrad { t.projector(c.features) }.toArray())
    }

    /// The summary site: δ at the base word and at the end and padding tokens (every token
    /// after the prompt), nowhere else; it trains, samples, and its projector says where it goes.
    func testSummarySite() throws {
        let pipe = try pipeline("a")
        let tok = pipe.tokenizer
        let prompt = "a knight waving"
        let n = tok.tokenIDs(prompt).count
        let word = try tok.positions(of: "knight", in: prompt)     // this fixture's vocabulary splits it
        XCTAssertEqual(try OffsetSite.output.positions(of: "knight", in: prompt, tokenizer: tok), word)
        XCTAssertEqual(try OffsetSite.summary.positions(of: "knight", in: prompt, tokenizer: tok), word + Array((n + 1)..<77))
        XCTAssertThrowsError(try OffsetSite.summary.positions(of: "ninja", in: prompt, tokenizer: tok))
        let c = try cluster(pipe, 16)
        var cfg = OneActorConfig(); cfg.steps = 3; cfg.offsetSite = .summary
        let dir = tempDir()
        let t = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: dir)
        try TrainingLoop.run(t) { _ in true }
        try t.saveProjector(to: dir + "/projector.safetensors")
        let (projector, site) = try OneActorAdapter.loadProjector(path: dir + "/projector.safetensors", model: pipe.fingerprint)
        XCTAssertEqual(site, .summary)
        let adapter = OneActorAdapter(projector: projector, cluster: c, site: site)
        var r = GenerationRequest(prompt: prompt)
        r.steps = 2; r.width = 16; r.height = 16; r.count = 2
        let plain = try pipe.encodePrompts(r).branches[.conditional]!.context
        let tuned = try adapter.conditioning(for: r, pipeline: pipe, v: 1).branches[.conditional]!.resolved()
        let d = plain.shape[2]
        let delta = (tuned - plain).toArray()
        for p in 0..<77 {
            let moved = (0..<d).contains { delta[p * d + $0] != 0 }
            XCTAssertEqual(moved, word.contains(p) || p > n, "token \(p)")
        }
        XCTAssertNoThrow(try pipe.generate(r, conditioning: adapter.conditioning(for: r, pipeline: pipe, v: 1),
                                           guidance: ClusterGuidance(eta1: 5, eta2: 1, steps: 0..<2, outsideScale: 5)))
    }

    /// Several draws per row: the batch holds every row's draws, the three terms stay per row
    /// kind, and one draw per row is the paper's loss exactly.
    func testSeveralDrawsPerRow() throws {
        let pipe = try pipeline("a")
        let c = try cluster(pipe, 16)
        var cfg = OneActorConfig(); cfg.steps = 3; cfg.drawsPerRow = 3; cfg.offsetSite = .input
        let t = try OneActorTuner(pipeline: pipe, cluster: c, config: cfg, directory: tempDir())
        var losses: [[String: Float]] = []
        try TrainingLoop.run(t) { e in if e.kind == .step { losses.append(e.losses) }; return true }
        XCTAssertEqual(losses.count, 3)
        for l in losses { XCTAssertTrue(["loss", "target", "aux", "average"].allSatisfy { l[$0]?.isFinite ?? false }, "\(l)") }
    }

    /// Several tunings' adapters as one: their offsets' mean, and norm-matched that mean at the
    /// members' mean norm (two offsets a and −a/2: mean a/4, norm-matched 3a/4).
    func testSoupOfAdaptersAveragesTheirOffsets() {
        let a = Tensor([3, 4, 0], shape: [1, 3]), b = Tensor([-1.5, -2, 0], shape: [1, 3])
        let x = OneActorAdapter(targetOffset: a, auxiliaryOffset: b, baseWord: "knight", site: .summary)
        let y = OneActorAdapter(targetOffset: b, auxiliaryOffset: a, baseWord: "knight", site: .summary)
        let plain = OneActorAdapter.soup(of: [x, y], normMatched: false)
        XCTAssertEqual(plain.targetOffset.toArray(), [0.75, 1, 0])
        XCTAssertEqual(plain.auxiliaryOffset.toArray(), [0.75, 1, 0])
        XCTAssertEqual(plain.baseWord, "knight"); XCTAssertEqual(plain.site, .summary)
        let matched = OneActorAdapter.soup(of: [x, y], normMatched: true)
        for (g, e) in zip(matched.targetOffset.toArray(), [2.25, 3, 0] as [Float]) { XCTAssertEqual(g, e, accuracy: 1e-5) }
        XCTAssertEqual(OneActorAdapter.soup(of: [x], normMatched: true).targetOffset.toArray(), a.toArray(), "a soup of one is that tuning")
    }
}
