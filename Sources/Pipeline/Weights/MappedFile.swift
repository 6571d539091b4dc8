// A read-only file mapped into memory. Pages are private copy-on-write (MAP_PRIVATE with
// write permission) so tensors over the mapping can be modified in memory by code that owns
// them without ever touching the file.

import FileSafety
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let base: UnsafeMutableRawPointer?

    public init(path: String) throws {
        self.path = path
        if let why = RegularFile.problem(path) { throw SafetensorsError.cannotOpen(file: path, reason: why) }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SafetensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SafetensorsError.cannotOpen(file: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw SafetensorsError.cannotOpen(file: path, reason: "is a directory") }
        size = Int(st.st_size)
        if size == 0 { base = nil; return }
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw SafetensorsError.cannotOpen(file: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = p
    }

    deinit { if let base { munmap(base, size) } }
}
