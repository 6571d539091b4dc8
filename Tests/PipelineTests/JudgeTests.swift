// The World judge: a few training steps lower the loss, and a saved judge loads back to the
// same predictions. (Full training and its accuracy: `troupe train-judge`, models/judges.)

import Foundation
import XCTest
@testable import Pipeline

final class JudgeTests: XCTestCase {
    func testTrainingLowersTheLossAndSavedJudgesReload() throws {
        var losses: [Float] = []
        var job = JudgeTraining(worldSeed: 5, initSeed: 3, steps: 10)
        job.batch = 8
        let model = try job.run { _, loss in losses.append(loss); return true }
        XCTAssertEqual(losses.count, 10)
        XCTAssertLessThan(losses.suffix(3).reduce(0, +) / 3, losses.prefix(3).reduce(0, +) / 3, "\(losses)")
        let path = NSTemporaryDirectory() + "troupe-judge-\(getpid()).safetensors"
        try model.save(to: path, metadata: ["steps": "12"])
        let loaded = try AttributeClassifier(weights: WeightReader(paths: [path]))
        let world = World(seed: 77)
        let x = WorldBatch.images(world, (0..<6).map { world.sample($0) })
        XCTAssertEqual(loaded.predict(x), model.predict(x))
    }

    /// Fine-tuning starts from the given weights (same predictions before any step) and the
    /// softening blur mixes toward the 3×3 box mean: none at 0, flat images unchanged, a lone
    /// bright pixel spread over its neighbours at 1.
    func testFineTuneStartsFromWeightsAndSoftenBlurs() throws {
        let path = NSTemporaryDirectory() + "troupe-judge-init-\(getpid()).safetensors"
        let start = try AttributeClassifier(seed: 9)
        try start.save(to: path, metadata: [:])
        var job = JudgeTraining(worldSeed: 5, initSeed: 3, steps: 0)
        job.initWeights = path
        let same = try job.run()
        let world = World(seed: 78)
        let x = WorldBatch.images(world, (0..<4).map { world.sample($0) })
        XCTAssertEqual(same.predict(x), start.predict(x))

        let n = 4
        var img = [Float](repeating: 0, count: 3 * n * n)
        img[1 * n + 1] = 9
        var none = img; JudgeTraining.soften(&none, size: n, amount: 0)
        XCTAssertEqual(none, img)
        var flat = [Float](repeating: 0.3, count: 3 * n * n); JudgeTraining.soften(&flat, size: n, amount: 1)
        for v in flat { XCTAssertEqual(v, 0.3, accuracy: 1e-6) }
        var full = img; JudgeTraining.soften(&full, size: n, amount: 1)
        XCTAssertEqual(full[1 * n + 1], 1, accuracy: 1e-6)      // 9 over its 3×3 neighbourhood
        XCTAssertEqual(full[0], 9.0 / 4, accuracy: 1e-6)        // the corner averages 4 pixels
        XCTAssertEqual(full[3 * n + 3], 0)                       // out of reach
        XCTAssertEqual(full[n * n + 1 * n + 1], 0)               // channels stay apart
    }
}
