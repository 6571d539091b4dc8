// Inputs that must be regular files (weights, PNGs, configs): a FIFO would block the reader
// forever, a device (/dev/zero, /dev/urandom) would feed it without end. Checked before
// opening, through symlinks.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

public enum RegularFile {
    /// nil when `path` is a regular file (or does not exist: the caller's open reports that);
    /// otherwise what it is instead.
    public static func problem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return nil
        case S_IFDIR: return "is a directory, not a file"
        case S_IFIFO: return "is a FIFO, not a regular file"
        case S_IFCHR, S_IFBLK: return "is a device, not a regular file"
        default: return "is not a regular file"
        }
    }
}
