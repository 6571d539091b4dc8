// The run-folder options every long training command shares (`train-base`, `train-decoder`,
// `identity train`) and what they do with them: one folder per run (checkpoints/,
// metrics.jsonl, the result), checkpoints every N steps and on Ctrl-C, `--stop-after` to train
// in pieces, `--resume` to continue exactly where the last checkpoint left off, and one way to
// end: a line on stderr saying how to continue, a JSON object with the last losses, and a
// `cancelled` error when Ctrl-C stopped it.

import ArgumentParser
import Foundation
import Pipeline

struct TrainingRunOptions: ParsableArguments {
    @Option(help: "Run folder: checkpoints/, metrics.jsonl, the run's settings and, when it finishes, its result.")
    var out: String
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints.")
    var checkpointEvery: Int?
    @Option(name: .customLong("stop-after"), help: "Stop (with a checkpoint) after this many steps in this piece.")
    var stopAfter: Int?
    @Flag(help: "Continue the run in --out from its latest checkpoint.")
    var resume = false
    @Flag(help: "Print one JSON object on stdout at the end.")
    var json = false

    var metricsPath: String { out + "/metrics.jsonl" }

    /// Refuses a --checkpoint-every below 1 before anything is created.
    func validateCheckpointEvery() throws {
        if let checkpointEvery, checkpointEvery < 1 { throw StudioError.badInput("--checkpoint-every must be ≥ 1") }
    }

    /// Trains `trainer` from where it stands, logging to the run's metrics.jsonl.
    func train(_ trainer: Trainer, command: String) throws -> TrainingConsole {
        let console = try TrainingConsole(command: command, metricsPath: metricsPath, phase: trainer.phase,
                                          firstStep: trainer.stepsDone, stopAfter: stopAfter)
        try console.train(trainer)
        return console
    }

    /// Ends the command: says on stderr what happened (`result` when the run is complete,
    /// otherwise where it stopped — `position`, e.g. "step 120" — and how to continue), prints
    /// the JSON object (`fields` plus steps_this_run, seconds and the last step's losses as
    /// last_<term>), and throws `cancelled` when Ctrl-C ended the run.
    func report(command: String, console: TrainingConsole, finished: Bool, result: String, position: String,
                fields: [String: Any]) throws {
        let message = finished ? "finished; \(result)"
            : "stopped at \(position) with a checkpoint; continue with: troupe \(command) --out \(out) --resume"
        FileHandle.standardError.write(Data("\(command): \(message)\n".utf8))
        if json {
            var obj = fields
            obj["out"] = out; obj["steps_this_run"] = console.done; obj["seconds"] = console.seconds
            for (k, v) in console.last { obj["last_" + k] = v }
            try printJSON(obj)
        }
        if console.interrupted { throw StudioError.cancelled("\(command) interrupted; checkpoint written, resume with --resume") }
    }
}
