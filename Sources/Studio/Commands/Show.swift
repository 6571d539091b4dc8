// `troupe show FILE.png…`: images inline in the terminal (sixel, half blocks or ASCII).

import ArgumentParser
import Foundation
import Preview

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show PNG images in the terminal.")

    @Option(help: "sixel, blocks (24-bit colour), blocks-256 or ascii (default: what the terminal supports).")
    var graphics: String?
    @Option(help: "Widest image, in terminal columns.")
    var width: Int?
    @Argument(help: "PNG files.")
    var files: [String]

    func validate() throws {
        if let g = graphics, GraphicsMode(rawValue: g) == nil {
            throw ValidationError("--graphics must be one of \(GraphicsMode.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if files.isEmpty { throw ValidationError("give at least one PNG file") }
    }

    func run() throws {
        let out = TerminalOutput.detect(graphics: graphics)
        var failures: [String] = []
        for f in files {
            do {
                let img = try PNGCodec.read(path: f)
                let bytes = try out.render(img, maxColumns: width)
                FileHandle.standardOutput.write(Data(bytes))
                print("\(f)  \(img.width)×\(img.height)")
            } catch {
                failures.append("\(error)")
                FileHandle.standardError.write(Data("troupe: \(error)\n".utf8))
            }
        }
        if !failures.isEmpty { throw StudioError.badInput("\(failures.count) of \(files.count) files could not be shown") }
    }
}
