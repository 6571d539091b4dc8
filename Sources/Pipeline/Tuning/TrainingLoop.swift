// The one training harness (design §1, §9): every trainer — appearance LoRA, OneActor's
// projector, and the rest as they move here — is a `Trainer` that performs one step and
// writes one checkpoint; `TrainingLoop.run` owns the loop: step, event, checkpoint every N
// steps, at the end and whenever the listener asks to stop (so Ctrl-C, SIGTERM and SIGHUP
// leave a resumable run), then a `finished` event. One typed event for every trainer: phase,
// step, total, each loss term, learning rate.

public struct TrainingEvent: Sendable {
    public enum Kind: String, Sendable { case step, checkpoint, phaseFinished, finished }
    public let kind: Kind
    public let phase: String
    /// Steps done (1-based after a step).
    public let step: Int, total: Int
    /// Each loss term by name; "loss" is the one minimised.
    public let losses: [String: Float]
    public let learningRate: Float

    public init(kind: Kind, phase: String, step: Int, total: Int, losses: [String: Float], learningRate: Float) {
        self.kind = kind; self.phase = phase; self.step = step; self.total = total; self.losses = losses; self.learningRate = learningRate
    }
}

public protocol Trainer: AnyObject {
    var phase: String { get }
    /// Steps completed.
    var stepsDone: Int { get }
    var totalSteps: Int { get }
    var checkpointEvery: Int { get }
    /// Performs step `stepsDone` (every draw a function of the run's seed and that step, so a
    /// resumed run repeats what an uninterrupted one does) and counts it.
    func trainStep() throws -> (losses: [String: Float], learningRate: Float)
    func saveCheckpoint() throws
    /// Whether the loop checkpoints after a phase's last step (trainers whose phase change
    /// writes its own checkpoint say no).
    var checkpointsAtPhaseEnd: Bool { get }
    /// After a phase's last step: moves to the next phase and returns true, or returns false
    /// when the run is complete.
    func advancePhase() throws -> Bool
    /// Before the `finished` event (also when a finished run is resumed): final outputs.
    func finish() throws
}

extension Trainer {
    public var checkpointsAtPhaseEnd: Bool { true }
    public func advancePhase() throws -> Bool { false }
    public func finish() throws {}
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(term: String, step: Int, value: Float)
    public var description: String {
        switch self {
        case let .nonFinite(term, step, value):
            return "the \(term) term became \(value) at step \(step); stopped without checkpointing it, so the last checkpoint is the last good state (lower the learning rate, then resume)"
        }
    }
}

public enum TrainingLoop {
    /// Trains until done or until `event` returns false (a checkpoint is written first). A
    /// step whose losses are not finite stops the run with `TrainingError.nonFinite` before
    /// anything is checkpointed: the weights it produced are never saved.
    public static func run(_ t: Trainer, event: (TrainingEvent) -> Bool) throws {
        while true {
            while t.stepsDone < t.totalSteps {
                let (losses, lr) = try t.trainStep()
                if let bad = losses.sorted(by: { $0.key < $1.key }).first(where: { !$0.value.isFinite }) {
                    throw TrainingError.nonFinite(term: bad.key, step: t.stepsDone, value: bad.value)
                }
                let keepGoing = event(TrainingEvent(kind: .step, phase: t.phase, step: t.stepsDone, total: t.totalSteps, losses: losses, learningRate: lr))
                let phaseEnd = t.stepsDone == t.totalSteps && t.checkpointsAtPhaseEnd
                if t.stepsDone % max(1, t.checkpointEvery) == 0 || phaseEnd || !keepGoing {
                    try t.saveCheckpoint()
                    _ = event(TrainingEvent(kind: .checkpoint, phase: t.phase, step: t.stepsDone, total: t.totalSteps, losses: losses, learningRate: lr))
                }
                if !keepGoing { return }
            }
            let ended = (phase: t.phase, step: t.stepsDone, total: t.totalSteps)
            guard try t.advancePhase() else { break }
            _ = event(TrainingEvent(kind: .phaseFinished, phase: ended.phase, step: ended.step, total: ended.total, losses: [:], learningRate: 0))
        }
        try t.finish()
        _ = event(TrainingEvent(kind: .finished, phase: t.phase, step: t.stepsDone, total: t.totalSteps, losses: [:], learningRate: 0))
    }
}

extension Trainer {
    /// `TrainingLoop.run(self, event:)`.
    public func run(event: (TrainingEvent) -> Bool) throws { try TrainingLoop.run(self, event: event) }
}
