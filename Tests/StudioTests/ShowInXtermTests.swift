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
    /// The studio's Generate screen in xterm (sixel): the preview is drawn as a sixel image
    /// inside the preview pane — a square of 64·k pixels (whole-number enlargement of the
    /// 64×64 sprite) on the right of the screen. The mono theme leaves every coloured pixel to
    /// the image, so the image is the bounding box of the saturated pixels.
    func testStudioPreviewIsASixelImageInTheGenerateScreen() throws {
        guard let xvfb = which("Xvfb"), let xterm = which("xterm"), let importTool = which("import") else {
            throw XCTSkip("Xvfb, xterm and ImageMagick are needed (tools/bootstrap.sh)")
        }
        let tmp = NSTemporaryDirectory() + "troupe-xterm-studio-\(getpid())/"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let env = ["TROUPE_HOME": tmp + "home"]
        XCTAssertEqual(try TroupeRun.run(["character", "new", "Ada", "--prompt", "a knight waving, smiling, in a forest, front view",
                                          "--base-word", "knight", "--seed", "7"], environment: env).status, 0)
        let display = ":\(80 + Int(getpid() % 9))"
        let server = try spawn(xvfb, [display, "-screen", "0", "1024x700x24", "-nolisten", "tcp"], env: [:])
        defer { server.terminate(); server.waitUntilExit() }
        Thread.sleep(forTimeInterval: 1.5)
        // `env -u`: the test runner may export NO_COLOR (SwiftPM does when its output is not a
        // terminal), which would rightly turn the studio's colours and sixel off.
        let script = "env -u NO_COLOR -u TROUPE_GRAPHICS TERM=xterm-256color TROUPE_HOME='\(tmp)home' '\(TroupeRun.binary)' --theme mono --character Ada --screen generate 2>'\(tmp)stderr'; echo $? > '\(tmp)status'; sleep 30"
        let term = try spawn(xterm, ["-ti", "vt340", "-xrm", "XTerm*decTerminalID: vt340", "-xrm", "XTerm*numColorRegisters: 256",
                                     "-geometry", "110x34+0+0", "-bg", "black", "-fg", "white", "-e", "sh", "-c", script], env: ["DISPLAY": display])
        defer { term.terminate(); term.waitUntilExit() }
        var found: (x: Int, y: Int, w: Int, h: Int)?
        var shot: RGBImage?
        for _ in 0..<50 {   // a loaded machine: the model loads and renders before the first sixel
            Thread.sleep(forTimeInterval: 0.8)
            let cap = try spawn(importTool, ["-window", "root", tmp + "shot.png"], env: ["DISPLAY": display])
            cap.waitUntilExit()
            guard let s = try? PNGCodec.read(path: tmp + "shot.png") else { continue }
            shot = s
            if let b = saturatedBox(s), b.w >= 128 { found = b; break }
        }
        let s = try XCTUnwrap(shot)
        if found == nil { try? FileManager.default.copyItem(atPath: tmp + "shot.png", toPath: NSTemporaryDirectory() + "troupe-xterm-studio-failure.png") }
        let b = try XCTUnwrap(found, "no image appeared on the screen; studio status \((try? String(contentsOfFile: tmp + "status", encoding: .utf8)) ?? "running"), stderr: \((try? String(contentsOfFile: tmp + "stderr", encoding: .utf8)) ?? "")")
        XCTAssertEqual(b.w, b.h, accuracy: 2, "the sprite is square")
        XCTAssertEqual(b.w % 64, 0, "a whole-number enlargement of 64 px: \(b)")
        XCTAssertGreaterThan(b.x, s.width / 4, "the preview pane is on the right")
        // Inside, every k×k block is one colour (nearest-neighbour sixel pixels, not text cells).
        let k = b.w / 64
        var uniform = 0, blocks = 0
        for by in stride(from: b.y, to: b.y + b.h - k, by: k * 4) {
            for bx in stride(from: b.x, to: b.x + b.w - k, by: k * 4) {
                let c0 = pixel(s, bx, by)
                blocks += 1
                if (0..<k).allSatisfy({ dy in (0..<k).allSatisfy { dx in pixel(s, bx + dx, by + dy) == c0 } }) { uniform += 1 }
            }
        }
        XCTAssertGreaterThan(Double(uniform) / Double(max(1, blocks)), 0.9, "\(uniform) of \(blocks) blocks uniform")
    }

    func pixel(_ img: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        let i = (y * img.width + x) * img.channels
        return Array(img.pixels[i..<(i + 3)])
    }

    /// Bounding box of the coloured pixels (max − min channel > 12). The mono theme draws only
    /// greys (max − min 0), so anything coloured is the image; a higher bar missed a sprite's
    /// dark, nearly grey ground rows (a forest floor at max − min 40–47) and cut it short.
    func saturatedBox(_ img: RGBImage) -> (x: Int, y: Int, w: Int, h: Int)? {
        var x0 = Int.max, y0 = Int.max, x1 = -1, y1 = -1
        for y in 0..<img.height {
            for x in 0..<img.width {
                let p = pixel(img, x, y)
                if Int(p.max()!) - Int(p.min()!) > 12 { x0 = min(x0, x); y0 = min(y0, y); x1 = max(x1, x); y1 = max(y1, y) }
            }
        }
        return x1 < 0 ? nil : (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
    }

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
