// Character names are folder names inside the store, so they are validated before any path is
// built: printable Unicode (spaces allowed), at most 64 characters and 200 UTF-8 bytes, no
// path separators, no leading dot, not "." or "..". Names are NFC-normalised, so the same name
// typed on different systems finds the same folder.

import Foundation

enum CharacterName {
    static let maxCharacters = 64, maxBytes = 200

    static func validated(_ raw: String) throws -> String {
        let name = raw.precomposedStringWithCanonicalMapping
        func bad(_ why: String) -> StoreError { .badName(raw, reason: why) }
        if name.trimmingCharacters(in: .whitespaces).isEmpty { throw bad("it is empty") }
        if name != name.trimmingCharacters(in: .whitespaces) { throw bad("leading or trailing spaces") }
        if name.count > maxCharacters { throw bad("longer than \(maxCharacters) characters") }
        if name.utf8.count > maxBytes { throw bad("longer than \(maxBytes) bytes in UTF-8") }
        if name.contains("/") || name.contains("\\") { throw bad("contains a path separator") }
        if name.hasPrefix(".") { throw bad("starts with a dot") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }) {
            throw bad("contains control characters")
        }
        return name
    }
}
