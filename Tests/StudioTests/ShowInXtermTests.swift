// `troupe show` in a real terminal: xterm in VT340 mode (sixel) under Xvfb, screenshot with
// ImageMagick's `import`, and the image found in the screenshot at the expected size.
// Skipped where Xvfb, xterm or import is missing (tools/bootstrap.sh installs them).

import Foundation
import XCTest
import Preview

final class ShowInXtermTests: XCTestCase {
    func which(_ tool: String) -> String? {
        for dir in ["/usr/bin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(tool)") {
            return "\(dir)/\(tool)"
        }
        return nil
    }

    func spawn(_ path: String, _ args: [String], env: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    func testSixelImageAppearsInXterm() throws {
        guard let xvfb = which("Xvfb"), let xterm = which("xterm"), let importTool = which("import") else {
            throw XCTSkip("Xvfb, xterm and ImageMagick are needed (tools/bootstrap.sh)")
        }
        let tmp = NSTemporaryDirectory() + "troupe-xterm-\(getpid())/"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        // 64×64: left half red, right half green; troupe show enlarges it 4× (256×256).
        var px = [UInt8]()
        for _ in 0..<64 { for x in 0..<64 { px += x < 32 ? [255, 0, 0] : [0, 255, 0] } }
        try PNGCodec.write(RGBImage(width: 64, height: 64, pixels: px), to: tmp + "halves.png")

        let display = ":\(90 + Int(getpid() % 9))"
        let server = try spawn(xvfb, [display, "-screen", "0", "800x600x24", "-nolisten", "tcp"], env: [:])
        defer { server.terminate(); server.waitUntilExit() }
        Thread.sleep(forTimeInterval: 1.5)
        let script = "'\(TroupeRun.binary)' show --graphics sixel '\(tmp)halves.png'; sleep 6"
        let term = try spawn(xterm, ["-ti", "vt340", "-xrm", "XTerm*decTerminalID: vt340", "-geometry", "80x30+0+0",
                                     "-bg", "white", "-fg", "black", "-e", "sh", "-c", script], env: ["DISPLAY": display])
        defer { term.terminate(); term.waitUntilExit() }
        // Wait for the image, then photograph the screen.
        var shot: RGBImage?
        for _ in 0..<10 {
            Thread.sleep(forTimeInterval: 0.8)
            let cap = try spawn(importTool, ["-window", "root", tmp + "shot.png"], env: ["DISPLAY": display])
            cap.waitUntilExit()
            if let s = try? PNGCodec.read(path: tmp + "shot.png"), bbox(s, [255, 0, 0]) != nil { shot = s; break }
        }
        let s = try XCTUnwrap(shot, "no red region appeared on the screen")
        let red = try XCTUnwrap(bbox(s, [255, 0, 0])), green = try XCTUnwrap(bbox(s, [0, 255, 0]))
        // The red half is 128×256 px, the green half beside it on its right.
        XCTAssertEqual(red.w, 128, accuracy: 4); XCTAssertEqual(red.h, 256, accuracy: 4)
        XCTAssertEqual(green.w, 128, accuracy: 4); XCTAssertEqual(green.x, red.x + red.w, accuracy: 3)
        XCTAssertEqual(green.y, red.y, accuracy: 2)
    }

    /// Bounding box of the pixels within 16 levels of `color` (nil when none): sixel colour
    /// registers are percentages and xterm shows pure red as (248, 0, 0).
    func bbox(_ img: RGBImage, _ color: [UInt8]) -> (x: Int, y: Int, w: Int, h: Int)? {
        var x0 = Int.max, y0 = Int.max, x1 = -1, y1 = -1
        for y in 0..<img.height {
            for x in 0..<img.width {
                let i = (y * img.width + x) * img.channels
                if (0..<3).allSatisfy({ abs(Int(img.pixels[i + $0]) - Int(color[$0])) <= 16 }) {
                    x0 = min(x0, x); y0 = min(y0, y); x1 = max(x1, x); y1 = max(y1, y)
                }
            }
        }
        return x1 < 0 ? nil : (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    }
}
