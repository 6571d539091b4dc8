// Atomic file replacement: write a temp file beside the target, fsync it, rename over the
// target, fsync the directory. A crash leaves either the old file or the new one, never a mix.
// Symlinks are followed and devices/FIFOs refused (FileSafety.ReplaceTarget).

import FileSafety
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum AtomicFile {
    public struct Failure: Error, CustomStringConvertible {
        public let path: String, step: String, reason: String
        public var description: String { "\(path): \(step) failed: \(reason)" }
    }

    public static func write(_ data: Data, to requested: String) throws {
        let path: String
        do { path = try ReplaceTarget.resolve(requested) } catch { throw Failure(path: requested, step: "open", reason: "\(error)") }
        let tmp = ReplaceTarget.tempPath(beside: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw Failure(path: path, step: "create temp file", reason: String(cString: strerror(errno))) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        let written: Bool = data.withUnsafeBytes { buf in
            var off = 0
            while off < buf.count {
                let r = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if r <= 0 { if r < 0 && errno == EINTR { continue }; return false }
                off += r
            }
            return true
        }
        let writeErr = String(cString: strerror(errno))
        guard written else { close(fd); throw Failure(path: path, step: "write", reason: writeErr) }
        guard fsync(fd) == 0 else { let e = String(cString: strerror(errno)); close(fd); throw Failure(path: path, step: "fsync", reason: e) }
        close(fd)
        guard rename(tmp, path) == 0 else { throw Failure(path: path, step: "rename", reason: String(cString: strerror(errno))) }
        ok = true
        ReplaceTarget.syncDirectory(of: path)
    }
}
