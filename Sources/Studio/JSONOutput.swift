// `--json` output: one object with sorted keys on stdout (design §7).

import Foundation

func printJSON(_ object: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}
