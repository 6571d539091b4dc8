import XCTest
@testable import Pipeline

/// A trainer whose loss is given per step; it counts checkpoints instead of writing them.
private final class ScriptedTrainer: Trainer {
    let phase = "test"
    var stepsDone = 0
    let totalSteps: Int
    let checkpointEvery = 2
    var checkpoints: [Int] = []
    let loss: (Int) -> Float
    init(total: Int, loss: @escaping (Int) -> Float) { totalSteps = total; self.loss = loss }
    func trainStep() throws -> (losses: [String: Float], learningRate: Float) {
        stepsDone += 1
        return (["loss": loss(stepsDone), "mse": 0.5], 1e-4)
    }
    func saveCheckpoint() throws { checkpoints.append(stepsDone) }
}

final class TrainingLoopTests: XCTestCase {
    func testRunsCheckpointsAndFinishes() throws {
        let t = ScriptedTrainer(total: 5) { Float($0) }
        var kinds: [TrainingEvent.Kind] = []
        try TrainingLoop.run(t) { kinds.append($0.kind); return true }
        XCTAssertEqual(t.checkpoints, [2, 4, 5])
        XCTAssertEqual(kinds.last, .finished)
        XCTAssertEqual(kinds.filter { $0 == .step }.count, 5)
    }

    /// A NaN loss stops the run before that step is checkpointed: the last checkpoint on disk
    /// is the last good state, and the error says so.
    func testNonFiniteLossStopsWithoutCheckpointingIt() {
        for bad in [Float.nan, .infinity] {
            let t = ScriptedTrainer(total: 10) { $0 == 5 ? bad : 1 }
            var steps: [Int] = []
            XCTAssertThrowsError(try TrainingLoop.run(t) { e in if e.kind == .step { steps.append(e.step) }; return true }) { e in
                XCTAssertTrue("\(e)".contains("loss term became"), "\(e)")
                XCTAssertTrue("\(e)".contains("step 5"), "\(e)")
                XCTAssertTrue("\(e)".contains("last checkpoint"), "\(e)")
            }
            XCTAssertEqual(t.checkpoints, [2, 4], "step 5 was never checkpointed")
            XCTAssertEqual(steps, [1, 2, 3, 4], "no event for the bad step")
        }
    }

    func testStopRequestCheckpointsFirst() throws {
        let t = ScriptedTrainer(total: 10) { _ in 1 }
        try TrainingLoop.run(t) { $0.kind != .step || $0.step < 3 }
        XCTAssertEqual(t.checkpoints, [2, 3])
    }
}
