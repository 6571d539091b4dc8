// `troupe` (no subcommand) or `troupe studio`: the ncurses studio (design §1, §7). It needs a
// terminal; graphics are probed before curses starts (sixel where the terminal answers that it
// has it, half blocks otherwise, shades of ASCII without colour). The terminal is restored on
// every way out: q, an error, a signal, a crash.

import ArgumentParser
import Foundation
import Preview
import TUI

struct StudioCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "studio", abstract: "The terminal studio (what `troupe` with no command opens).")

    @Option(help: "Colour theme: default, light, high-contrast, mono, or a path to a theme .json (default: $TROUPE_THEME, else default).")
    var theme: String?
    @Option(help: "Images: sixel, blocks or ascii (default: what the terminal supports).")
    var graphics: String?
    @Option(help: "Open with this character selected.")
    var character: String?
    @Option(help: "Open on this screen: characters, character, generate, tune or compare.")
    var screen: String?

    static var themeDirectories: [String] {
        ModelLocator.modelRoots.map { ($0 as NSString).deletingLastPathComponent + "/themes" }
    }

    /// The theme the flag or TROUPE_THEME names; a bad one is reported and the default used.
    static func loadTheme(_ name: String?) -> (Theme, warning: String?) {
        guard let name = name ?? ProcessInfo.processInfo.environment["TROUPE_THEME"], !name.isEmpty else { return (.builtInDefault, nil) }
        do { return (try Theme.load(name, directories: themeDirectories), nil) } catch { return (.builtInDefault, "\(error)") }
    }

    func run() throws {
        if let g = graphics, !["sixel", "blocks", "ascii", "blocks-256"].contains(g) {
            throw StudioError.badInput("--graphics must be sixel, blocks or ascii")
        }
        let first = try screen.map { name -> ScreenID in
            guard let id = ScreenID.allCases.first(where: { $0.title.lowercased() == name.lowercased() }) else {
                throw StudioError.badInput("--screen must be one of \(ScreenID.allCases.map { $0.title.lowercased() }.joined(separator: ", "))")
            }
            return id
        }
        guard isatty(STDIN_FILENO) != 0, isatty(STDOUT_FILENO) != 0 else {
            throw StudioError.badInput("the studio needs a terminal (stdin and stdout); for scripts use the commands (troupe --help)")
        }
        let env = ProcessInfo.processInfo.environment
        let (theme, warning) = StudioCommand.loadTheme(theme)
        let out = TerminalOutput.detect(graphics: graphics)
        let noColor = env["NO_COLOR"].map { !$0.isEmpty } ?? false
        let store = CharacterStore(wait: false)
        let ctx = StudioContext(store: store, environment: env, useSixel: out.decision.mode == .sixel, cellSize: out.decision.cellSize)
        if let warning { ctx.fail(warning) }
        if let character { ctx.selectedCharacter = try storeCall { try store.load(character) }.name }
        let term: TerminalSession
        do { term = try TerminalSession(theme: theme, noColor: noColor) } catch { throw StudioError.badInput("\(error)") }
        defer { term.end() }
        let app = StudioApp(ctx: ctx)
        if let first { app.show(first) }
        app.run(term)
        term.end()
        let sig = TerminalSession.pendingSignal
        if sig != 0 { throw StudioError.cancelled("studio closed by signal \(sig); running jobs continue") }
    }
}
