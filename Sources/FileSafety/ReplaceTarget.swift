// Where an atomic replace of `path` writes, shared by every writer (Pipeline's AtomicFile,
// Preview's PNG writer): the temp file goes beside the real target and is renamed over it.
//   - a symlink is followed: its target file is replaced and the link stays a link;
//   - a device, FIFO, socket or directory is refused (renaming over /dev/full as root would
//     replace the device node; a FIFO would swallow the image);
//   - the temp name is short and fixed-length, so a target name near the 255-byte limit still
//     leaves room for it.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum ReplaceTarget {
    public struct NotRegular: Error, CustomStringConvertible {
        public let path: String, kind: String
        public var description: String { "\(path) is \(kind), not a regular file; write to a file path instead" }
    }

    /// The file an atomic write to `path` replaces.
    public static func resolve(_ path: String) throws -> String {
        var target = path
        for _ in 0..<40 {   // symlink chains, as the kernel's limit
            var st = stat()
            guard lstat(target, &st) == 0 else { return target }   // nothing there yet: a new file
            switch st.st_mode & S_IFMT {
            case S_IFREG: return target
            case S_IFLNK:
                var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let n = readlink(target, &buf, buf.count - 1)
                guard n > 0 else { return target }
                let dest = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                target = dest.hasPrefix("/") ? dest : ((target as NSString).deletingLastPathComponent as NSString).appendingPathComponent(dest)
            case S_IFDIR: throw NotRegular(path: path, kind: "a directory")
            case S_IFCHR, S_IFBLK: throw NotRegular(path: path, kind: "a device")
            case S_IFIFO: throw NotRegular(path: path, kind: "a FIFO")
            default: throw NotRegular(path: path, kind: "a socket or special file")
            }
        }
        throw NotRegular(path: path, kind: "a symlink loop")
    }

    /// A temp path beside `target`.
    public static func tempPath(beside target: String) -> String {
        let dir = (target as NSString).deletingLastPathComponent
        return (dir.isEmpty ? "." : dir) + "/.troupe-tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Makes a file just renamed into `target`'s directory durable.
    public static func syncDirectory(of target: String) {
        let dir = (target as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
