import XCTest
@testable import Pipeline

/// The stage tuner's pivotal offset (SummaryOffset): it starts at zero (the first step is the
/// plain tuner's), learns, is checkpointed, continued by the next stage and written with the
/// LoRA; sampling adds it to the prompt branches at the base word and summary tokens only.
final class SummaryOffsetTests: XCTestCase {
    func fixture() throws -> (StableDiffusionPipeline, Tensor) {
        let pipe = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/a").path))
        var rng = SplitMixRandom(seed: 9)
        let size = pipe.vae.config.sampleSize
        return (pipe, Tensor.rand([1, 3, size, size], low: -1, high: 1, using: &rng))
    }

    func config(offset: Bool) -> AppearanceTuningConfig {
        var c = AppearanceTuningConfig()
        c.steps = 3; c.batch = 2; c.learningRate = 1e-2; c.summaryOffsetLearningRateScale = offset ? 3 : 0; c.checkpointEvery = 2
        return c
    }

    func testOffsetLearnsFromZeroAndIsCheckpointedContinuedAndSaved() throws {
        let dir = NSTemporaryDirectory() + "troupe-summary-offset-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (pipe, ref) = try fixture()
        let plain = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: config(offset: false), directory: dir + "/p")
        let p0 = try plain.trainStep().losses
        EvalGeneration.removeAdapters(pipe)
        let tuner = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: config(offset: true), directory: dir + "/o",
                                        baseWord: "knight")
        let width = pipe.textEncoder.config.hiddenSize
        XCTAssertEqual(tuner.lora[SummaryOffset.key]?.shape, [1, width])
        XCTAssertEqual(tuner.summaryOffset?.delta.toArray(), [Float](repeating: 0, count: width), "starts at zero")
        let o0 = try tuner.trainStep().losses
        XCTAssertEqual(o0["eps"]!, p0["eps"]!, accuracy: 1e-6, "δ = 0: the first step is the plain tuner's")
        _ = try tuner.trainStep()
        let learned = try XCTUnwrap(tuner.summaryOffset).delta
        XCTAssertGreaterThan(learned.square().sum().item(), 0, "the offset has a gradient and moves")
        try tuner.saveCheckpoint()

        // Resumed from its checkpoint: the same δ.
        EvalGeneration.removeAdapters(pipe)
        let resumed = try AppearanceTuner.resume(pipeline: pipe, references: [ref], directory: dir + "/o", baseWord: "knight")
        XCTAssertEqual(resumed.summaryOffset?.delta.toArray(), learned.toArray())

        // The next stage continues it; the LoRA file carries it and names the base word.
        let start = resumed.lora.mapValues { $0.detached().clone() }
        EvalGeneration.removeAdapters(pipe)
        var c3 = AppearanceTuningConfig.stage3(from: config(offset: true), hasJudge: false); c3.steps = 1
        let next = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: c3, directory: dir + "/3",
                                       startFrom: start, baseWord: "knight")
        XCTAssertEqual(next.summaryOffset?.delta.toArray(), learned.toArray())
        try next.saveLoRA(to: dir + "/stage.safetensors")
        let file = try SafetensorsFile(path: dir + "/stage.safetensors")
        XCTAssertEqual(file.metadata[SummaryOffset.baseWordField], "knight")
        XCTAssertEqual(try file.tensor(SummaryOffset.key).toArray(), learned.toArray())
    }

    func testOffsetNeedsTheBaseWordInThePrompt() throws {
        let dir = NSTemporaryDirectory() + "troupe-summary-offset-bad-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (pipe, ref) = try fixture()
        XCTAssertThrowsError(try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: config(offset: true), directory: dir)) {
            XCTAssertTrue("\($0)".contains("base word"), "\($0)")
        }
        XCTAssertThrowsError(try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: config(offset: true), directory: dir,
                                                 baseWord: "wizard")) { XCTAssertTrue("\($0)".contains("wizard"), "\($0)") }
    }

    /// Sampling: δ lands on the prompt branches at the base word, the end token and the padding;
    /// every other token and the unconditional branch are untouched; a branch's own offset stays.
    func testApplyAddsTheOffsetToThePromptBranchesAtTheSummaryPositions() throws {
        let (pipe, _) = try fixture()
        let prompt = "a knight, smiling"
        let request = pipe.request(prompt: prompt)
        let base = try pipe.encodePrompts(request)
        let width = pipe.textEncoder.config.hiddenSize
        var rng = SplitMixRandom(seed: 3)
        let delta = Tensor.randn([1, width], using: &rng)
        let positions = try SummaryOffset.positions(baseWord: "knight", in: prompt, tokenizer: pipe.tokenizer)
        let ids = pipe.tokenizer.encode(prompt)
        let knight = try pipe.tokenizer.positions(of: "knight", in: prompt)
        let end = ids.firstIndex(of: pipe.tokenizer.eosID)!
        XCTAssertEqual(positions, knight + Array(end..<ids.count))
        // A OneActor-style offset already on the plain branch is kept (folded into its context).
        var withOwn = base
        let own = Tensor.randn([1, width], using: &rng)
        withOwn.branches[.plain] = TextConditioning(context: base.branches[.conditional]!.context, basePositions: knight, offset: own)
        let out = try SummaryOffset(delta: delta, baseWord: "knight").apply(to: withOwn, prompt: prompt, tokenizer: pipe.tokenizer)
        let before = base.branches[.conditional]!.context.toArray(), after = out.branches[.conditional]!.resolved().toArray()
        let d = delta.toArray()
        for p in 0..<ids.count {
            for k in 0..<width {
                let expected = before[p * width + k] + (positions.contains(p) ? d[k] : 0)
                XCTAssertEqual(after[p * width + k], expected, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(out.branches[.unconditional]!.resolved().toArray(), base.branches[.unconditional]!.resolved().toArray())
        let plain = out.branches[.plain]!.resolved().toArray(), o = own.toArray()
        for p in knight { for k in 0..<width { XCTAssertEqual(plain[p * width + k], before[p * width + k] + o[k] + d[k], accuracy: 1e-5) } }
        XCTAssertThrowsError(try SummaryOffset(delta: delta, baseWord: "wizard").apply(to: base, prompt: prompt, tokenizer: pipe.tokenizer))
    }

    /// A stage LoRA file carries the offset: LoRAFile reads it beside the pairs (it is not a
    /// LoRA key); a file whose offset lacks its base word or is not one vector is refused by
    /// name, and an offset of another width is an error when applied, not a trap.
    func testLoRAFileReadsTheOffsetAndRefusesBadOnes() throws {
        let dir = NSTemporaryDirectory() + "troupe-summary-offset-file-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (pipe, ref) = try fixture()
        let tuner = try AppearanceTuner(pipeline: pipe, references: [ref], prompt: "a knight", config: config(offset: true), directory: dir + "/o",
                                        baseWord: "knight")
        _ = try tuner.trainStep()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try tuner.saveLoRA(to: dir + "/stage.safetensors")
        let file = try LoRAFile(path: dir + "/stage.safetensors")
        XCTAssertEqual(file.pairs.count, tuner.loraNames.filter { $0.hasSuffix("lora_A.weight") }.count)
        XCTAssertEqual(file.summaryOffset?.baseWord, "knight")
        XCTAssertEqual(file.summaryOffset?.delta.toArray(), tuner.summaryOffset?.delta.toArray())
        XCTAssertEqual(try SafetensorsFile(path: dir + "/stage.safetensors").metadata[SummaryOffset.learningRateScaleField], "3.0")
        XCTAssertEqual(file.summaryOffset?.learningRateScale, 3, "the rate a later stage continues at")
        let width = pipe.textEncoder.config.hiddenSize
        try SafetensorsWriter.write([SummaryOffset.key: Tensor(zeros: [1, width])], to: dir + "/nameless.safetensors", metadata: ["format": "pt"])
        XCTAssertThrowsError(try LoRAFile(path: dir + "/nameless.safetensors")) { XCTAssertTrue("\($0)".contains(SummaryOffset.baseWordField), "\($0)") }
        try SafetensorsWriter.write([SummaryOffset.key: Tensor(zeros: [2, width])], to: dir + "/two.safetensors", metadata: [SummaryOffset.baseWordField: "knight"])
        XCTAssertThrowsError(try LoRAFile(path: dir + "/two.safetensors")) { XCTAssertTrue("\($0)".contains("one vector"), "\($0)") }
        try SafetensorsWriter.write([SummaryOffset.key: Tensor(zeros: [1, width + 1])], to: dir + "/wide.safetensors", metadata: [SummaryOffset.baseWordField: "knight"])
        let wide = try XCTUnwrap(try LoRAFile(path: dir + "/wide.safetensors").summaryOffset)
        XCTAssertThrowsError(try wide.apply(to: try pipe.encodePrompts(pipe.request(prompt: "a knight")), prompt: "a knight", tokenizer: pipe.tokenizer)) {
            XCTAssertTrue("\($0)".contains("another model"), "\($0)")
        }
    }

    /// Soups of offsets (tune stages --soup): the mean, or the mean rescaled to the members'
    /// mean norm; offsets of another base word are not one character's.
    func testSoupOfOffsets() throws {
        let a = SummaryOffset(delta: Tensor([3, 0], shape: [1, 2]), baseWord: "knight")
        let b = SummaryOffset(delta: Tensor([0, 4], shape: [1, 2]), baseWord: "knight")
        XCTAssertEqual(try SummaryOffset.soup(of: [a, b], normMatched: false).delta.toArray(), [1.5, 2])
        let matched = try SummaryOffset.soup(of: [a, b], normMatched: true).delta.toArray()
        XCTAssertEqual(matched[0], 1.5 * 3.5 / 2.5, accuracy: 1e-5); XCTAssertEqual(matched[1], 2 * 3.5 / 2.5, accuracy: 1e-5)
        XCTAssertThrowsError(try SummaryOffset.soup(of: [a, SummaryOffset(delta: b.delta, baseWord: "wizard")], normMatched: true))
        // The soup continues at its first member's rate; a rate that is no rate is not recorded.
        let rated = SummaryOffset(delta: a.delta, baseWord: "knight", learningRateScale: 30)
        XCTAssertEqual(try SummaryOffset.soup(of: [rated, b], normMatched: true).metadata,
                       [SummaryOffset.baseWordField: "knight", SummaryOffset.learningRateScaleField: "30.0"])
        XCTAssertNil(SummaryOffset(delta: a.delta, baseWord: "knight", learningRateScale: .nan).learningRateScale)
        XCTAssertThrowsError(try SummaryOffset.soup(of: [], normMatched: true))
        // Its weight under the LoRA's multiplier: faded in up to 1 (0: the base model), not extrapolated.
        XCTAssertEqual([0, 0.5, 1, 1.2, 2].map { SummaryOffset.weight(atLoRAMultiplier: $0) }, [0, 0.5, 1, 1, 1])
    }
}
