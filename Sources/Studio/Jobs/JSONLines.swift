// A JSON-lines file read as bytes, line by line: a line that is not valid UTF-8 or not valid
// JSON (a torn last line after a SIGKILL, a bad byte from a full disk) is skipped alone and
// never takes the lines around it with it. Rewrites keep the bytes of the lines they keep, so
// history is never re-encoded.

import Foundation
import Pipeline

enum JSONLines {
    /// The file's lines as raw bytes (no newline); empty when the file is absent.
    static func lines(_ path: String) -> [Data] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).map { Data($0) }
    }

    /// Replaces the file atomically with the lines `keep` accepts, byte for byte.
    static func keep(_ path: String, where keep: (Data) -> Bool) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var out = Data()
        for line in lines(path) where keep(line) { out.append(line); out.append(UInt8(ascii: "\n")) }
        try AtomicFile.write(out, to: path)
    }
}
