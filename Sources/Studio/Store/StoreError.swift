// Errors of the character store: each names the file or character and says what to do.

import Foundation

enum StoreError: Error, CustomStringConvertible, Equatable {
    case badName(String, reason: String)
    case notFound(String)
    case exists(String)
    case corrupt(file: String, reason: String)
    case newerSchema(file: String, found: Int, supported: Int)
    case inUse(name: String, pid: Int32?)
    case jobRunning(name: String, pid: Int32)
    case badImage(file: String, reason: String)
    case io(path: String, reason: String)

    var description: String {
        switch self {
        case let .badName(n, r): return "invalid character name '\(n)': \(r)"
        case .notFound(let n): return "no character named '\(n)' (see `troupe character list`)"
        case .exists(let n): return "a character named '\(n)' already exists"
        case let .corrupt(f, r): return "\(f): \(r)"
        case let .newerSchema(f, found, ok): return "\(f): schema version \(found) is newer than this troupe understands (\(ok)); upgrade troupe — the file was left untouched"
        case let .inUse(n, pid): return "character '\(n)' is in use by \(pid.map { "PID \($0)" } ?? "another process"); retry, or pass --wait to wait for it"
        case let .jobRunning(n, pid): return "character '\(n)' has a tuning job running (PID \(pid)); cancel it first (Tune screen `c`, or Ctrl-C on its command), then retry"
        case let .badImage(f, r): return "\(f): \(r)"
        case let .io(p, r): return "\(p): \(r)"
        }
    }

    /// Bad input (exit 2) or a failure while working (exit 1).
    var isUserError: Bool {
        switch self { case .io, .inUse: return false; default: return true }
    }
}
