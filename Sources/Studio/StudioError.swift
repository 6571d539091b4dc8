// Errors the CLI reports, sorted by whose fault they are: bad input (exit 2) or a failure
// while working (exit 1). Library errors are classified where they are caught.

import Foundation
import Pipeline
import Preview

enum StudioError: Error, CustomStringConvertible {
    case badInput(String)
    case failed(String)
    case cancelled(String)

    var description: String {
        switch self {
        case .badInput(let s), .failed(let s), .cancelled(let s): return s
        }
    }

    var exitCode: Int32 {
        switch self {
        case .badInput: return 2
        case .failed, .cancelled: return 1
        }
    }

    /// Wraps a library error: problems with files or values the user gave are bad input.
    static func wrap(_ error: Error) -> StudioError {
        switch error {
        case let e as StudioError: return e
        case is SafetensorsError, is WeightsError, is TokenizerError, is PNGError, is SchedulerError, is DecoderTuningError:
            return .badInput("\(error)")
        case let e as GenerationError:
            return e == .cancelled ? .cancelled("cancelled") : .badInput("\(e)")
        default:
            return .failed("\(error)")
        }
    }
}
