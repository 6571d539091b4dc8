import XCTest
@testable import Pipeline

/// troupe.json: a model's recommendations, each optional, bad values named.
final class SamplingDefaultsTests: XCTestCase {
    func load(_ json: String?) throws -> SamplingDefaults {
        let dir = NSTemporaryDirectory() + "troupe-defaults-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        if let json { try json.write(toFile: dir + "/troupe.json", atomically: true, encoding: .utf8) }
        return try SamplingDefaults.load(folder: dir)
    }

    func testRecommendationsAndTheirPrecedence() throws {
        XCTAssertEqual(try load(nil), .standard)
        let d = try load(#"{"guidance_scale": 6, "steps": 30, "lora_learning_rate": 0.002, "lora_steps": 300}"#)
        XCTAssertEqual(d.guidanceScale, 6); XCTAssertEqual(d.steps, 30)
        let c = AppearanceTuningConfig.recommended(by: d)
        XCTAssertEqual(c.learningRate, 0.002); XCTAssertEqual(c.steps, 300)
        let partial = try load(#"{"guidance_scale": 5}"#)
        XCTAssertEqual(partial.steps, SamplingDefaults.standard.steps)
        XCTAssertNil(partial.loraLearningRate)
        XCTAssertEqual(AppearanceTuningConfig.recommended(by: partial).learningRate, AppearanceTuningConfig().learningRate)
        XCTAssertThrowsError(try load(#"{"lora_learning_rate": -1}"#)) { XCTAssertTrue("\($0)".contains("lora_learning_rate"), "\($0)") }
        XCTAssertThrowsError(try load(#"{"lora_steps": 0}"#)) { XCTAssertTrue("\($0)".contains("lora_steps"), "\($0)") }
        // The guidance for a character sampled through its stage LoRA: its own key, else the plain one.
        XCTAssertEqual(d.guidanceScale(characterLoRA: true), 6, "without lora_guidance_scale the LoRA samples at guidance_scale")
        let lora = try load(#"{"guidance_scale": 6, "lora_guidance_scale": 3}"#)
        XCTAssertEqual(lora.guidanceScale(characterLoRA: true), 3); XCTAssertEqual(lora.guidanceScale(characterLoRA: false), 6)
        XCTAssertEqual(SamplingDefaults.standard.guidanceScale(characterLoRA: true), SamplingDefaults.standard.guidanceScale)
        XCTAssertThrowsError(try load(#"{"lora_guidance_scale": -2}"#)) { XCTAssertTrue("\($0)".contains("lora_guidance_scale"), "\($0)") }
        // The stage LoRA's multiplier: the model's, else 1.
        XCTAssertEqual(d.stageLoRAScale, 1)
        XCTAssertEqual(try load(#"{"lora_scale": 1.2}"#).stageLoRAScale, 1.2)
        XCTAssertThrowsError(try load(#"{"lora_scale": -1}"#)) { XCTAssertTrue("\($0)".contains("lora_scale"), "\($0)") }
        // The summary offset's learning-rate multiple: the model's, else none learned.
        XCTAssertEqual(AppearanceTuningConfig.recommended(by: d).summaryOffsetLearningRateScale, 0)
        XCTAssertFalse(AppearanceTuningConfig.recommended(by: d).learnsSummaryOffset)
        XCTAssertEqual(AppearanceTuningConfig.recommended(by: try load(#"{"lora_summary_offset": 30}"#)).summaryOffsetLearningRateScale, 30)
        XCTAssertThrowsError(try load(#"{"lora_summary_offset": -1}"#)) { XCTAssertTrue("\($0)".contains("lora_summary_offset"), "\($0)") }
        XCTAssertThrowsError(try load(#"{"steps": "many"}"#)) { XCTAssertTrue("\($0)".contains("troupe.json"), "\($0)") }
        // The shipped model's file parses and recommends what its card says.
        let shipped = try SamplingDefaults.load(folder: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../models/troupe-mini").standardized.path)
        XCTAssertEqual(shipped.guidanceScale, 6); XCTAssertEqual(shipped.loraLearningRate, 0.002); XCTAssertEqual(shipped.loraSteps, 400)
        XCTAssertEqual(shipped, BaseModelArchitecture.mini.recommended, "the shipped file is what train-base exports")
    }

    /// "oneactor": each key optional over OneActorConfig's defaults (the paper's), bad values named.
    func testOneActorRecommendation() throws {
        let d = try load(#"{"oneactor": {"offset_site": "summary", "steps": 400, "learning_rate": 0.001, "identity_weight": 5, "pose_weight": 0.3}}"#)
        let c = OneActorConfig.recommended(by: d)
        XCTAssertEqual(c.offsetSite, .summary); XCTAssertEqual(c.steps, 400); XCTAssertEqual(c.learningRate, 0.001)
        XCTAssertEqual(c.identityWeight, 5); XCTAssertEqual(c.poseWeight, 0.3)
        // The subject mask: off unless the model recommends it.
        XCTAssertFalse(d.oneActorSubjectMask)
        XCTAssertTrue(try load(#"{"oneactor": {"subject_mask": true}}"#).oneActorSubjectMask)
        XCTAssertFalse(try load(nil).oneActorSubjectMask)
        XCTAssertThrowsError(try load(#"{"oneactor": {"subject_mask": "yes"}}"#)) { XCTAssertTrue("\($0)".contains("troupe.json"), "\($0)") }
        XCTAssertEqual(OneActorConfig.recommended(by: try load(nil)), OneActorConfig())
        let partial = OneActorConfig.recommended(by: try load(#"{"oneactor": {"steps": 300}}"#))
        var want = OneActorConfig(); want.steps = 300
        XCTAssertEqual(partial, want)
        XCTAssertThrowsError(try load(#"{"oneactor": {"offset_site": "everywhere"}}"#)) { XCTAssertTrue("\($0)".contains("troupe.json"), "\($0)") }
        XCTAssertThrowsError(try load(#"{"oneactor": {"steps": 0}}"#)) { XCTAssertTrue("\($0)".contains("oneactor.steps"), "\($0)") }
        XCTAssertThrowsError(try load(#"{"oneactor": {"learning_rate": 2}}"#)) { XCTAssertTrue("\($0)".contains("oneactor.learning_rate"), "\($0)") }
        XCTAssertThrowsError(try load(#"{"oneactor": {"pose_weight": -1}}"#)) { XCTAssertTrue("\($0)".contains("oneactor.pose_weight"), "\($0)") }
    }
}
