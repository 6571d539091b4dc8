// Where Troupe keeps characters and runs (design §6): $TROUPE_HOME, else
// $XDG_DATA_HOME/troupe, else ~/.local/share/troupe.

import Foundation

enum StorePaths {
    static func root(environment env: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let h = env["TROUPE_HOME"], !h.isEmpty { return h }
        if let x = env["XDG_DATA_HOME"], !x.isEmpty { return x + "/troupe" }
        return (env["HOME"] ?? NSHomeDirectory()) + "/.local/share/troupe"
    }
}
