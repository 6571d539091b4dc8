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
}
