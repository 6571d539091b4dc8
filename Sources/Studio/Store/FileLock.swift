// An advisory lock (flock) on a file, holding the owner's PID so a second process can say
// who has it. Released when the holder closes it or dies (even by SIGKILL), so a crash never
// leaves a stale lock.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

final class FileLock {
    private let fd: Int32
    let path: String

    /// Takes the lock; `wait` blocks until it is free, otherwise a held lock throws `.inUse`.
    init(path: String, name: String, wait: Bool) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError.io(path: path, reason: "cannot open lock file: \(String(cString: strerror(errno)))") }
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            if errno == EINTR { continue }
            let holder = FileLock.holder(fd)
            close(fd)
            throw StoreError.inUse(name: name, pid: holder)
        }
        let text = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    private static func holder(_ fd: Int32) -> Int32? {
        var buf = [CChar](repeating: 0, count: 32)
        let n = pread(fd, &buf, 31, 0)
        guard n > 0 else { return nil }
        return Int32(String(cString: buf).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    deinit { flock(fd, LOCK_UN); close(fd) }
}
