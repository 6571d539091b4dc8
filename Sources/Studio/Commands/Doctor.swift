// `troupe doctor`: what this machine and terminal give Troupe, and why.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report BLAS, terminal graphics, store and model status.")

    @Flag(help: "Print one JSON object on stdout.")
    var json = false
    @Flag(help: "Also print the terminal's raw replies to the capability queries (escaped).")
    var raw = false

    func run() throws {
        let env = ProcessInfo.processInfo.environment
        let tty = isatty(STDOUT_FILENO) != 0
        let replies = TerminalProbe.query()
        // Report on the terminal itself, even when stdout is redirected.
        let decision = GraphicsDecision.decide(environment: env, isTerminal: tty || replies != nil, replies: replies)
        let (cols, rows) = TerminalProbe.size()
        let store = StorePaths.root()
        var isDir: ObjCBool = false
        let storeExists = FileManager.default.fileExists(atPath: store, isDirectory: &isDir) && isDir.boolValue
        let storeState = storeExists ? (FileManager.default.isWritableFile(atPath: store) ? "exists, writable" : "exists, NOT writable")
                                     : "not created yet (made on first use)"
        let model = try? ModelLocator.resolve(nil)
        let cellSource = replies?.cellSize != nil ? "reported by the terminal" : "default (the terminal did not say)"
        let sixel = decision.mode == .sixel
        if json {
            let obj: [String: Any] = [
                "blas": BLAS.configuration, "threads": BLAS.threads, "term": env["TERM"] ?? "", "colorterm": env["COLORTERM"] ?? "",
                "columns": cols, "rows": rows, "graphics": decision.mode.rawValue, "graphics_reason": decision.reason,
                "sixel": sixel, "color_registers": decision.colorRegisters,
                "cell_width": decision.cellSize.width, "cell_height": decision.cellSize.height,
                "store": store, "store_exists": storeExists, "default_model": model?.path ?? NSNull(),
            ]
            try printJSON(obj)
            return
        }
        func line(_ k: String, _ v: String) { print(k.padding(toLength: 12, withPad: " ", startingAt: 0) + v) }
        line("BLAS", "\(BLAS.configuration), \(BLAS.threads) threads")
        line("terminal", "TERM=\(env["TERM"] ?? "(unset)") COLORTERM=\(env["COLORTERM"] ?? "(unset)"), \(cols)×\(rows) cells\(tty ? "" : ", stdout is not a terminal")")
        line("sixel", sixel ? "yes: \(decision.reason)" : "no: \(decision.reason)")
        line("graphics", "\(decision.mode.rawValue)" + (sixel ? ", \(decision.colorRegisters) colour registers" : ""))
        line("cell size", "\(decision.cellSize.width)×\(decision.cellSize.height) px, \(cellSource)")
        line("store", "\(store) (\(storeState))")
        line("model", model.map { "\(ModelLocator.defaultModelName) at \($0.path)" } ?? "\(ModelLocator.defaultModelName) not found (built by `troupe train-base`); use --model DIR")
        if raw, let r = replies {
            line("replies", "\(r)")
        }
        if raw {
            let fd = open("/dev/tty", O_RDWR | O_NOCTTY)
            if fd >= 0 {
                let bytes = TerminalProbe.rawReplies(fd: fd)
                close(fd)
                line("raw", bytes.map { $0 == 0x1B ? "\\e" : String(UnicodeScalar($0)) }.joined())
            }
        }
    }
}
