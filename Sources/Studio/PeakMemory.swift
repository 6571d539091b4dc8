// Peak resident memory of this process (getrusage: kilobytes on Linux).

import Foundation

enum PeakMemory {
    static var megabytes: Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_maxrss) / 1024
    }
}
