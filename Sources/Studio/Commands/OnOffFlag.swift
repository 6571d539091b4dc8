// The parser of a single-valued on/off flag (`generate --subject-mask`, `train-base
// --probe-context`); eval's off/on sweeps are `Eval.onOff`.

enum OnOffFlag {
    static func value(_ text: String, flag: String) throws -> Bool {
        switch text {
        case "on": return true
        case "off": return false
        default: throw StudioError.badInput("\(flag) takes on or off, got '\(text)'")
        }
    }
}
