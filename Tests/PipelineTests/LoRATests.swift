// LoRA files in the kohya and PEFT layouts (tools/fixtures/sd.py writes both from the same
// random pairs, including a 1×1-conv proj_in and a 3×3 LoCon conv) equal diffusers run with
// the pairs merged into the weights (multiplier · alpha/rank · B·A).

import XCTest
@testable import Pipeline

final class LoRATests: XCTestCase {
    /// The merged-weights reference, the fixture's inputs, the LoRA multiplier, and a fresh
    /// UNet and text encoder of the tiny pipeline.
    func fixtureModel() throws -> (SafetensorsFile, SafetensorsFile, Float, UNet2DConditionModel, CLIPTextModel) {
        let merged = try Fixtures.file("sd/lora-merged.safetensors")
        let folder = try DiffusersFolder(path: Fixtures.url("sd/a").path)
        return (merged, try Fixtures.file("sd/a.safetensors"), try merged.tensor("multiplier").item(), try folder.unet(), try folder.textEncoder())
    }

    func testKohyaAndPEFTFilesEqualMergedWeights() throws {
        let merged = try Fixtures.file("sd/lora-merged.safetensors")
        let ref = try Fixtures.file("sd/a.safetensors")
        let multiplier = try merged.tensor("multiplier").item()
        for file in ["lora-kohya", "lora-peft"] {
            let folder = try DiffusersFolder(path: Fixtures.url("sd/a").path)
            let unet = try folder.unet(), te = try folder.textEncoder()
            let lora = try LoRAFile(path: Fixtures.url("sd/\(file).safetensors").path)
            XCTAssertEqual(try lora.apply(multiplier: multiplier, unet: unet, textEncoder: te), 6, file)
            let ids = try ref.integers("tok.ids")
            assertClose(te([Array(ids[0..<77]), Array(ids[77..<154])]), try merged.tensor("te.last"), tol: 1e-4, "\(file) text encoder")
            let eps = GradMode.noGrad { unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample }
            assertClose(eps, try merged.tensor("unet.eps_t500"), tol: 1e-4, "\(file) unet")
            // …and it did change the model.
            XCTAssertGreaterThan((eps - (try ref.tensor("unet.eps_t500"))).square().sum().item(), 1e-4)
        }
    }

    /// Parity with diffusers' own loader (tools/fixtures/lora_diffusers.py: lora_state_dict +
    /// load_lora_into_unet/text_encoder through PEFT, as pipe.load_lora_weights): a kohya file at
    /// multiplier 0.8 and the PEFT file diffusers' save_lora_weights wrote from it, at 1.
    func testEqualsDiffusersLoadLoraWeights() throws {
        let ref = try Fixtures.file("sd/a.safetensors"), want = try Fixtures.file("sd/lora-diffusers-ref.safetensors")
        let multiplier = try want.tensor("multiplier").item()
        for (style, m, count) in [("kohya", multiplier, 10), ("peft", Float(1), 10)] {
            let folder = try DiffusersFolder(path: Fixtures.url("sd/a").path)
            let unet = try folder.unet(), te = try folder.textEncoder()
            let lora = try LoRAFile(path: Fixtures.url("sd/lora-diffusers-\(style).safetensors").path)
            XCTAssertEqual(try lora.apply(multiplier: m, unet: unet, textEncoder: te), count, style)
            let ids = try ref.integers("tok.ids")
            assertClose(te([Array(ids[0..<77]), Array(ids[77..<154])]), try want.tensor("\(style).te.last"), tol: 1e-4, "\(style) text encoder")
            let eps = GradMode.noGrad { unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample }
            assertClose(eps, try want.tensor("\(style).unet.eps_t500"), tol: 1e-4, "\(style) unet")
        }
    }

    /// An attached set rescales exactly (the merged-weights reference at its multiplier, and the
    /// base model at 0) and detaches to the base model's output bit for bit, for two sets at once.
    func testAttachRescaleDetach() throws {
        let (merged, ref, multiplier, unet, te) = try fixtureModel()
        func eps() -> Tensor { GradMode.noGrad { unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample } }
        let plain = eps().toArray()
        let kohya = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path).attach(multiplier: 2.5, unet: unet, textEncoder: te)
        let peft = try LoRAFile(path: Fixtures.url("sd/lora-peft.safetensors").path).attach(multiplier: 0, unet: unet, textEncoder: te)
        XCTAssertNotEqual(eps().toArray(), plain)
        kohya.rescale(multiplier)
        assertClose(eps(), try merged.tensor("unet.eps_t500"), tol: 1e-4, "rescaled to the reference multiplier")
        kohya.rescale(0)
        XCTAssertEqual(eps().toArray(), plain, "multiplier 0 (both sets at 0) is the base model")
        kohya.rescale(multiplier)
        kohya.detach(); peft.detach()
        XCTAssertEqual(eps().toArray(), plain, "detached: the base model bit for bit")
        XCTAssertTrue(unet.linears.values.allSatisfy { $0.adapters.isEmpty } && unet.convs.values.allSatisfy { $0.adapters.isEmpty })
    }

    /// Adapters a tuner left on the model (no file's id) adopted as one set: rescaled from their
    /// own scales — 0 is the base model, back to 1 the tuned model, bit for bit — and detached.
    /// (Eval sweeps a stage LoRA's multiplier this way without compounding.)
    func testTunersAdaptersAdoptedAsASet() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let ref = try Fixtures.file("sd/a.safetensors")
        func eps() -> [Float] { GradMode.noGrad { pipe.unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample.toArray() } }
        let plain = eps()
        _ = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path).apply(multiplier: 1, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let tuned = eps()
        XCTAssertNotEqual(tuned, plain)
        let set = LoRASet.tuned(on: pipe)
        set.rescale(0)
        XCTAssertEqual(eps(), plain, "multiplier 0: the base model")
        set.rescale(1.5); set.rescale(1)
        XCTAssertEqual(eps(), tuned, "back to 1 from the adapters' own scales, not compounded")
        set.detach()
        XCTAssertEqual(eps(), plain)
    }

    /// Two tunings kept on one model (eval --stage-seeds): each tuner's id-less adapters given
    /// an id of their own, detached so the next trains on the bare model, then reattached; one
    /// alone at multiplier 1 (the other at 0) is that tuning bit for bit, and both at ½ are
    /// the mean of their weight deltas (their soup) — the model with the averaged ΔW merged.
    /// The model's fingerprint (what OneActor's cluster data and identity adapters are stamped
    /// with) is the loaded model's: a stage LoRA merged into the weights for sampling does not
    /// make files made for this model "another model's" (it did: `generate --character` with
    /// both a stage LoRA and OneActor refused the character's own projector).
    func testFingerprintIsTheLoadedModelsWhileALoRAIsMerged() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let loaded = pipe.fingerprint
        let set = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path).attach(multiplier: 1, unet: pipe.unet, textEncoder: pipe.textEncoder)
        set.merge()
        XCTAssertNotEqual(StableDiffusionPipeline.fingerprint(name: pipe.name, unet: pipe.unet, textEncoder: pipe.textEncoder), loaded,
                          "the merge changes the weights the fingerprint samples")
        XCTAssertEqual(pipe.fingerprint, loaded)
        set.detach()
        XCTAssertEqual(StableDiffusionPipeline.fingerprint(name: pipe.name, unet: pipe.unet, textEncoder: pipe.textEncoder), loaded)
        let again = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        XCTAssertEqual(again.fingerprint, loaded, "the same model loaded again")
    }

    func testTuningsKeptAsSetsDetachReattachAndAverage() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let ref = try Fixtures.file("sd/a.safetensors")
        func eps() -> [Float] { GradMode.noGrad { pipe.unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample.toArray() } }
        let plain = eps()
        let file = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path)
        _ = try file.apply(multiplier: 1, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let first = LoRASet.tuned(on: pipe, id: "seed-0")
        let tunedFirst = eps()
        first.detach()
        XCTAssertEqual(eps(), plain, "detached: the bare model for the next tuning")
        first.detach()     // a second detach keeps what the first took off
        _ = try file.apply(multiplier: -0.5, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let second = LoRASet.tuned(on: pipe, id: "seed-1")
        let tunedSecond = eps()
        XCTAssertNotEqual(tunedSecond, tunedFirst)
        first.reattach()
        first.rescale(1); second.rescale(0)
        XCTAssertEqual(eps(), tunedFirst, "the first alone")
        first.rescale(0); second.rescale(1)
        XCTAssertEqual(eps(), tunedSecond, "the second alone")
        first.rescale(0.5); second.rescale(0.5)
        let soup = eps()
        // Reference: the mean delta (1 − 0.5)/2 = 0.25 of the file's, applied as one set.
        first.detach(); second.detach()
        XCTAssertEqual(eps(), plain)
        _ = try file.apply(multiplier: 0.25, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let mean = eps()
        XCTAssertEqual(soup.count, mean.count)
        XCTAssertLessThan(zip(soup, mean).map { abs($0 - $1) }.max()!, 1e-5, "the soup is the mean of the deltas")
        XCTAssertGreaterThan(zip(soup, plain).map { abs($0 - $1) }.max()!, 1e-3, "and not the base model")
        // A detached set rescaled comes back at its new multiplier.
        LoRASet.tuned(on: pipe).detach()
        second.rescale(1); second.reattach()
        XCTAssertEqual(eps(), tunedSecond)
    }

    /// A soup of two tunings (the file at 1 and at −0.5, so every layer's deltas are D and −D/2)
    /// is the mean delta D/4 held as one set; norm-matched it is rescaled to the members' mean
    /// norm, 3D/4, per layer. Its members can be detached or attached at any multiplier.
    func testSoupIsTheMeanDeltaAndNormMatchedRestoresTheMembersNorm() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let ref = try Fixtures.file("sd/a.safetensors")
        func eps() -> [Float] { GradMode.noGrad { pipe.unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample.toArray() } }
        func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        let plain = eps()
        let file = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path)
        func reference(_ m: Float) throws -> [Float] {
            let set = try file.attach(multiplier: m, unet: pipe.unet, textEncoder: pipe.textEncoder)
            defer { set.detach() }
            return eps()
        }
        let quarter = try reference(0.25), threeQuarters = try reference(0.75)
        XCTAssertEqual(eps(), plain)
        _ = try file.apply(multiplier: 1, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let first = LoRASet.tuned(on: pipe, id: "seed-0")
        first.detach()
        _ = try file.apply(multiplier: -0.5, unet: pipe.unet, textEncoder: pipe.textEncoder)
        let second = LoRASet.tuned(on: pipe, id: "seed-1")
        second.rescale(0.3)      // read at multiplier 1 whatever it is sampled at
        second.detach()
        let (soup, ratios) = LoRASoup.make(of: [first, second], id: "soup", normMatched: false)
        XCTAssertFalse(ratios.isEmpty)
        for r in ratios { XCTAssertEqual(r, 1.0 / 3, accuracy: 1e-4, "‖D/4‖ over the mean of ‖D‖ and ‖D/2‖") }
        XCTAssertLessThan(maxDiff(eps(), quarter), 1e-5, "the soup is the mean of the deltas")
        soup.detach()
        let (matched, _) = LoRASoup.make(of: [first, second], id: "matched", normMatched: true)
        XCTAssertLessThan(maxDiff(eps(), threeQuarters), 1e-5, "norm-matched: the members' mean norm")
        matched.rescale(0)
        XCTAssertEqual(eps(), plain)
        XCTAssertGreaterThan(maxDiff(quarter, plain), 1e-3, "and the references are not the base model")
    }

    /// The soup of two files (the kohya fixture, and its pairs with every up × −0.5 written in
    /// the PEFT layout) is one ordinary LoRA file whose output is the mean delta's, D/4, and
    /// norm-matched 3D/4; files of another model's shapes are refused, naming the layer.
    func testSoupOfFilesIsOneLoRAFile() throws {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        let ref = try Fixtures.file("sd/a.safetensors")
        func eps() -> [Float] { GradMode.noGrad { pipe.unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample.toArray() } }
        func maxDiff(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }
        let kohya = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path)
        func output(_ file: LoRAFile, _ m: Float) throws -> [Float] {
            let set = try file.attach(multiplier: m, unet: pipe.unet, textEncoder: pipe.textEncoder)
            defer { set.detach() }
            return eps()
        }
        let dir = NSTemporaryDirectory() + "troupe-soup-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var negated: [String: Tensor] = [:]
        for (target, p) in kohya.pairs {
            let stem = target.replacingOccurrences(of: "|", with: ".")
            negated[stem + ".lora_A.weight"] = p.down!; negated[stem + ".lora_B.weight"] = p.up! * -0.5
            if let a = p.alpha { negated[stem + ".alpha"] = Tensor([a], shape: [1]) }
        }
        try SafetensorsWriter.write(negated, to: dir + "/b.safetensors")
        let members = [kohya, try LoRAFile(path: dir + "/b.safetensors")]
        for (matched, m) in [(false, Float(0.25)), (true, 0.75)] {
            let (tensors, ratios) = try LoRASoup.file(of: members, normMatched: matched)
            XCTAssertEqual(ratios.count, kohya.pairs.count)
            for r in ratios { XCTAssertEqual(r, 1.0 / 3, accuracy: 1e-4) }
            try SafetensorsWriter.write(tensors, to: dir + "/soup.safetensors")
            let soup = try LoRAFile(path: dir + "/soup.safetensors")
            XCTAssertLessThan(maxDiff(try output(soup, 1), try output(kohya, m)), 1e-5, matched ? "norm-matched: 3D/4" : "the mean delta, D/4")
        }
        // Another model's file: a layer whose pair has other dimensions.
        var foreign = negated
        let key = foreign.keys.sorted().first { $0.hasSuffix(".lora_A.weight") }!
        let a = foreign[key]!
        foreign[key] = Tensor(zeros: [a.shape[0], a.shape[1] + 1] + Array(a.shape.dropFirst(2)))
        try SafetensorsWriter.write(foreign, to: dir + "/foreign.safetensors")
        XCTAssertThrowsError(try LoRASoup.file(of: [kohya, try LoRAFile(path: dir + "/foreign.safetensors")], normMatched: true)) { e in
            XCTAssertTrue("\(e)".contains("not tunings of one model"), "\(e)")
        }
    }

    func testFrobeniusNormOfALowRankProduct() {
        var rng = SplitMixRandom(seed: 1)
        let down = Tensor.randn([3, 7], using: &rng), up = Tensor.randn([5, 3], using: &rng)
        let dense = up.matmul(down).toArray()
        let expected = dense.map { $0 * $0 }.reduce(0, +).squareRoot()
        XCTAssertEqual(LoRASoup.frobenius(down: down, up: up), expected, accuracy: 1e-4 * expected)
    }

    /// Merged into the weights, a set gives the merged-weights reference (the same thing
    /// computed one way instead of the other), rescales while merged, and unmerges and
    /// detaches to the base model bit for bit.
    func testMergeUnmergeAndDetachWhileMerged() throws {
        let (merged, ref, multiplier, unet, te) = try fixtureModel()
        func eps() -> Tensor { GradMode.noGrad { unet(try! ref.tensor("unet.sample"), timesteps: [500], context: try! ref.tensor("unet.context")).sample } }
        let plain = eps().toArray()
        let set = try LoRAFile(path: Fixtures.url("sd/lora-kohya.safetensors").path).attach(multiplier: multiplier, unet: unet, textEncoder: te)
        let adapted = eps().toArray()
        set.merge()
        XCTAssertTrue(set.merged)
        XCTAssertTrue(unet.linears.values.allSatisfy { $0.adapters.isEmpty } && unet.convs.values.allSatisfy { $0.adapters.isEmpty }, "merged: no adapter runs")
        assertClose(eps(), try merged.tensor("unet.eps_t500"), tol: 1e-4, "merged")
        let ids = try ref.integers("tok.ids")
        assertClose(te([Array(ids[0..<77]), Array(ids[77..<154])]), try merged.tensor("te.last"), tol: 1e-4, "merged text encoder")
        set.rescale(0)
        XCTAssertEqual(eps().toArray(), plain, "merged at multiplier 0 is the base model")
        set.rescale(multiplier)
        set.unmerge()
        XCTAssertEqual(eps().toArray(), adapted, "unmerged: the adapters again, bit for bit")
        set.merge(); set.detach()
        XCTAssertEqual(eps().toArray(), plain, "detached while merged: the base model bit for bit")
    }

    func testForeignFilesAreRefusedClearly() throws {
        XCTAssertThrowsError(try LoRAFile(path: Fixtures.url("python_written.safetensors").path)) { e in
            XCTAssertTrue("\(e)".contains("not LoRA weights"), "\(e)")
        }
    }
}
