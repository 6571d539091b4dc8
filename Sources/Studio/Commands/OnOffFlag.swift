// On/off flags. As an option's type (`train-base --probe-context`) ArgumentParser checks the
// value; `OnOffFlag.value` parses one that also arrives as text from elsewhere
// (`generate --subject-mask`, which a PNG's parameters can set too). Eval's off/on sweeps are
// `Eval.onOff`.

import ArgumentParser

enum OnOff: String, CaseIterable, ExpressibleByArgument {
    case on, off
    var isOn: Bool { self == .on }
}

enum OnOffFlag {
    static func value(_ text: String, flag: String) throws -> Bool {
        guard let v = OnOff(rawValue: text) else { throw StudioError.badInput("\(flag) takes on or off, got '\(text)'") }
        return v.isOn
    }
}
