// Themes: a role (what a piece of text is) → a colour and attributes. Files are themes/*.json:
//   { "name": "default", "roles": { "accent": { "fg": "#5fafff", "bold": true }, … } }
// A colour is "default" (the terminal's own), an ANSI name ("red", "bright-blue"), an xterm
// index 0–255, or "#rrggbb"; the screen maps it to what the terminal has (direct colour, 256,
// 8, or none). Roles a file leaves out keep the built-in default's value. A bad file names
// the key that is wrong and the studio falls back to the built-in default.

import Foundation

public enum Role: String, CaseIterable, Sendable {
    case text, dim, title, accent, border, selection, focus, status, statusKey, good, warning, error
    case plot1, plot2, plot3, plot4, plot5, plot6
    public static let plots: [Role] = [.plot1, .plot2, .plot3, .plot4, .plot5, .plot6]
}

public enum ThemeColor: Equatable, Sendable {
    case terminalDefault
    case indexed(Int)                  // 0–255 (0–7 basic, 8–15 bright)
    case rgb(UInt8, UInt8, UInt8)

    static let names = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"]

    init?(json: Any) {
        if let n = json as? Int, (0...255).contains(n) { self = .indexed(n); return }
        guard let s = (json as? String)?.lowercased() else { return nil }
        if s == "default" { self = .terminalDefault; return }
        if let i = ThemeColor.names.firstIndex(of: s) { self = .indexed(i); return }
        if s.hasPrefix("bright-"), let i = ThemeColor.names.firstIndex(of: String(s.dropFirst(7))) { self = .indexed(8 + i); return }
        if s.hasPrefix("#"), s.count == 7, let v = UInt32(s.dropFirst(), radix: 16) {
            self = .rgb(UInt8(v >> 16), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)); return
        }
        return nil
    }
}

public struct RoleStyle: Equatable, Sendable {
    public var fg: ThemeColor = .terminalDefault
    public var bg: ThemeColor = .terminalDefault
    public var bold = false, reverse = false, underline = false, dim = false
    public init(fg: ThemeColor = .terminalDefault, bg: ThemeColor = .terminalDefault, bold: Bool = false, reverse: Bool = false,
                underline: Bool = false, dim: Bool = false) {
        self.fg = fg; self.bg = bg; self.bold = bold; self.reverse = reverse; self.underline = underline; self.dim = dim
    }
}

public struct ThemeError: Error, CustomStringConvertible {
    public let file: String, key: String, problem: String
    public var description: String { "theme \(file): \(key): \(problem); using the default theme" }
}

public struct Theme: Sendable {
    public var name: String
    public var styles: [Role: RoleStyle]

    public func style(_ role: Role) -> RoleStyle { styles[role] ?? RoleStyle() }

    /// Built in, so the studio has colours even when no themes/ folder is found.
    public static let builtInDefault = Theme(name: "default", styles: [
        .text: RoleStyle(), .dim: RoleStyle(fg: .indexed(8)), .title: RoleStyle(fg: .indexed(14), bold: true),
        .accent: RoleStyle(fg: .indexed(12), bold: true), .border: RoleStyle(fg: .indexed(8)),
        .selection: RoleStyle(fg: .indexed(0), bg: .indexed(14)), .focus: RoleStyle(fg: .indexed(11), bold: true),
        .status: RoleStyle(fg: .indexed(7), bg: .indexed(236)), .statusKey: RoleStyle(fg: .indexed(11), bg: .indexed(236), bold: true),
        .good: RoleStyle(fg: .indexed(10)), .warning: RoleStyle(fg: .indexed(11)), .error: RoleStyle(fg: .indexed(9), bold: true),
        .plot1: RoleStyle(fg: .indexed(14)), .plot2: RoleStyle(fg: .indexed(11)), .plot3: RoleStyle(fg: .indexed(13)),
        .plot4: RoleStyle(fg: .indexed(10)), .plot5: RoleStyle(fg: .indexed(9)), .plot6: RoleStyle(fg: .indexed(12)),
    ])

    /// Parses a theme file's bytes; `file` names it in errors.
    public static func parse(_ data: Data, file: String) throws -> Theme {
        guard let obj = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ThemeError(file: file, key: "(file)", problem: "not a JSON object")
        }
        var theme = builtInDefault
        if let n = obj["name"] { guard let s = n as? String else { throw ThemeError(file: file, key: "name", problem: "must be a string") }; theme.name = s }
        guard let roles = obj["roles"] as? [String: Any] else { throw ThemeError(file: file, key: "roles", problem: "missing or not an object") }
        for (key, value) in roles {
            guard let role = Role(rawValue: key) else {
                throw ThemeError(file: file, key: "roles.\(key)", problem: "unknown role (roles: \(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard let spec = value as? [String: Any] else { throw ThemeError(file: file, key: "roles.\(key)", problem: "must be an object") }
            var style = RoleStyle()
            for (field, v) in spec {
                let path = "roles.\(key).\(field)"
                switch field {
                case "fg", "bg":
                    guard let c = ThemeColor(json: v) else {
                        throw ThemeError(file: file, key: path, problem: "'\(v)' is not a colour (default, an ANSI name, 0–255 or #rrggbb)")
                    }
                    if field == "fg" { style.fg = c } else { style.bg = c }
                case "bold", "reverse", "underline", "dim":
                    guard let b = v as? Bool else { throw ThemeError(file: file, key: path, problem: "must be true or false") }
                    switch field { case "bold": style.bold = b; case "reverse": style.reverse = b; case "underline": style.underline = b; default: style.dim = b }
                default:
                    throw ThemeError(file: file, key: path, problem: "unknown field (fg, bg, bold, reverse, underline, dim)")
                }
            }
            theme.styles[role] = style
        }
        return theme
    }

    /// Loads `name` (a path to a .json file, or a name looked up in `directories`).
    public static func load(_ name: String, directories: [String]) throws -> Theme {
        let candidates = name.hasSuffix(".json") || name.contains("/") ? [name] : directories.map { "\($0)/\(name).json" }
        guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
            throw ThemeError(file: name, key: "(file)", problem: "no such theme (looked in \(directories.joined(separator: ", ")))")
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw ThemeError(file: path, key: "(file)", problem: "cannot be read") }
        return try parse(data, file: path)
    }
}
