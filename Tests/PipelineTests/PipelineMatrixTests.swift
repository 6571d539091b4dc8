// Every scheduler × {ε-prediction (config a), v-prediction (config b)} × {seeded, given
// latents}, whole text→latents runs against diffusers (tools/fixtures/pipeline_matrix.py), so
// no pairing goes untested. Also the folder whose own scheduler is DPM-Solver++ as diffusers
// saves it ("lambda_min_clipped": -Infinity): it once failed to parse and was silently
// replaced by SD 1.x's ε-prediction defaults, which broke v-prediction models only.
// Bound: max abs error ≤ 2e-3 × max |reference| (as PipelineParityTests).

import XCTest
@testable import Pipeline

final class PipelineMatrixTests: XCTestCase {
    static let kinds: [(String, SchedulerKind?)] = [("ddim", .ddim), ("ddpm", .ddpm), ("pndm", .pndm), ("euler", .euler),
                                                    ("euler_a", .eulerAncestral), ("dpmpp_2m", .dpmpp2m), ("dpmpp_2m_karras", .dpmpp2mKarras),
                                                    ("folder_dpm", nil)]

    func check(_ a: Tensor, _ b: Tensor, _ what: String) {
        let x = a.toArray(), y = b.toArray()
        let scale = y.map(abs).max()!
        let err = zip(x, y).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(err, 2e-3 * scale, "\(what): max abs error \(err), reference max \(scale)")
    }

    /// A copy of fixture folder `config` whose scheduler is the one diffusers saved as DPM-Solver++.
    func folderWithDPMScheduler(_ config: String) throws -> String {
        let dir = NSTemporaryDirectory() + "troupe-matrix-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.url("sd/\(config)").path, toPath: dir)
        let json = dir + "/scheduler/scheduler_config.json"
        try FileManager.default.removeItem(atPath: json)
        try FileManager.default.copyItem(atPath: Fixtures.url("sd/matrix-\(config)-dpm-scheduler.json").path, toPath: json)
        return dir
    }

    func testEverySchedulerAndPredictionTypeMatchesDiffusers() throws {
        for (config, size, prediction) in [("a", 16, Prediction.epsilon), ("b", 32, .vPrediction)] {
            let plain = try StableDiffusionPipeline(folder: DiffusersFolder(path: Fixtures.url("sd/\(config)").path))
            let dpmFolder = try StableDiffusionPipeline(folder: DiffusersFolder(path: folderWithDPMScheduler(config)))
            XCTAssertEqual(try NoiseSchedule(dpmFolder.schedulerConfig).prediction, prediction, "the saved DPM config keeps its prediction type")
            XCTAssertEqual(try dpmFolder.scheduler(for: GenerationRequest(prompt: "x")).1, "dpmpp-2m")
            let r = try Fixtures.file("sd/matrix-\(config).safetensors")
            for (name, kind) in Self.kinds {
                let pipe = kind == nil ? dpmFolder : plain
                var req = GenerationRequest(prompt: "a knight with a red sword")
                req.negativePrompt = "blurry"; req.steps = 5; req.guidanceScale = 6; req.width = size; req.height = size
                req.scheduler = kind
                req.seed = 3
                req.initLatents = try r.tensor("\(name).init")
                check(try pipe.generate(req).latents, try r.tensor("\(name).from_init"), "\(config) (\(prediction)) / \(name), given latents")
                req.initLatents = nil
                req.seed = 1234
                check(try pipe.generate(req).latents, try r.tensor("\(name).from_seed"), "\(config) (\(prediction)) / \(name), seeded")
            }
        }
    }

    /// Non-finite literals from Python's json become null (the key's default) outside strings
    /// only; a scheduler config that is there but broken is an error, not a silent default.
    func testNonFiniteConfigValuesAndBrokenConfigs() throws {
        let text = #"{"a": -Infinity, "b": "NaN and -Infinity", "c": [Infinity, NaN], "d": "\"NaN\""}"#
        let out = String(decoding: ConfigDecoding.nonFiniteAsNull(Data(text.utf8)), as: UTF8.self)
        XCTAssertEqual(out, #"{"a": null, "b": "NaN and -Infinity", "c": [null, null], "d": "\"NaN\""}"#)
        let dir = try folderWithDPMScheduler("b")
        try Data(#"{"_class_name": "DPMSolverMultistepScheduler", "prediction_type": 3}"#.utf8).write(to: URL(fileURLWithPath: dir + "/scheduler/scheduler_config.json"))
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: DiffusersFolder(path: dir))) { e in
            XCTAssertTrue("\(e)".contains("scheduler_config.json") && "\(e)".contains("prediction_type"), "\(e)")
        }
    }
}
