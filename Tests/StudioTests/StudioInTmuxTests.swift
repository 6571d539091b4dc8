// The studio as a person meets it, in tmux: every screen by keys with its key hints, a
// character created, a slider moved and the preview re-rendered (the saved PNG records the new
// value), a tuning job started, its plot advancing, cancelled; q restores the terminal; other
// terminal types; a storm of random keys and resizes leaves the studio up and the store intact.

import Foundation
import XCTest
import Preview

final class StudioInTmuxTests: XCTestCase {
    var home = ""

    override func setUpWithError() throws {
        guard TmuxStudio.available else { throw XCTSkip("tmux is needed (tools/bootstrap.sh installs it)") }
        home = NSTemporaryDirectory() + "troupe-tmux-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    override func tearDown() {
        // Stop every process a test left running with this store (jobs are detached on
        // purpose, and a random key may have started one), then clean up.
        StudioInTmuxTests.killProcesses(usingStore: home)
        try? FileManager.default.removeItem(atPath: home)
    }

    /// Kills the processes whose environment has TROUPE_HOME=`store` (found through /proc).
    static func killProcesses(usingStore store: String) {
        let marker = Data("TROUPE_HOME=\(store)\0".utf8)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), pid != getpid(), let env = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
                  env.range(of: marker) != nil else { continue }
            kill(pid, SIGKILL)
        }
    }

    func testEveryScreenHasItsKeysAndQuitRestoresTheTerminal() throws {
        let t = try TmuxStudio(home: home)
        t.wait(forAll: ["no characters yet", "n new", "? keys", "q quit"])
        t.createCharacter("Ada", prompt: "a knight waving, smiling, in a forest, front view", baseWord: "knight", seed: "7")
        t.wait(forAll: ["Settings · Ada", "s save", "a accept"])      // a new character opens Generate
        t.wait(for: "seed 7 · cfg")                                  // the first preview rendered
        t.keys("1"); t.wait(forAll: ["Characters (1)", "▸ Ada", "base word   knight"])
        t.keys("2"); t.wait(forAll: ["References (0)", "f refs/rejected"])
        t.keys("4"); t.wait(forAll: ["Runs · Ada", "o OneActor", "s stage 1"])
        t.keys("5"); t.wait(forAll: ["Grids · Ada", "m make grid", "M methods grid"])
        t.keys("Tab"); t.wait(for: "Characters (1)")                 // Tab wraps from Compare to Characters
        t.keys("?"); let s = t.wait(forAll: ["keys (any key closes)", "switch screen"])
        XCTAssertTrue(s.contains("move the selection") || s.contains("switch screen"))
        t.keys("Escape"); t.keys("q")
        XCTAssertEqual(t.exitStatus(), 0)
        let before = try String(contentsOfFile: home + "/stty-before", encoding: .utf8)
        let after = try String(contentsOfFile: home + "/stty-after", encoding: .utf8)
        XCTAssertEqual(before, after, "stty -a differs after the studio quit")
    }

    func testSliderRerendersAndTheSavedPNGRecordsIt() throws {
        let t = try TmuxStudio(home: home)
        t.wait(for: "no characters yet")
        t.createCharacter("Bo", prompt: "a robot waving, in a city, front view", baseWord: "robot", seed: "3")
        t.wait(for: "seed 3 · cfg 6 ·")
        let first = t.screen
        t.keys("j", "j", "l", "l")                                   // focus CFG, +0.5 twice
        let s = t.wait(for: "seed 3 · cfg 7 ·")
        XCTAssertNotEqual(first, s)
        t.keys("s")
        let saved = t.wait(for: "saved ")
        let dir = home + "/characters/Bo/generations"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".png") }
        XCTAssertEqual(files.count, 1, saved)
        let text = try PNGCodec.readText(path: dir + "/" + files[0])
        let params = try XCTUnwrap(text.first { $0.0 == GenerationParameters.chunkKey }?.1)
        XCTAssertTrue(params.contains("CFG scale: 7"), params)
        XCTAssertTrue(params.contains("Seed: 3") && params.contains("Character: Bo"), params)
        t.keys("a"); t.wait(for: "accepted as a reference of Bo")
        t.keys("q"); XCTAssertEqual(t.exitStatus(), 0)
    }

    /// Quitting while a preview render is in flight exits cleanly: the studio waits for the
    /// render to stop at its next step before the process tears down what it runs on.
    func testQuitDuringAPreviewRenderExitsCleanly() throws {
        for i in 0..<4 {
            let h = home + "-quit\(i)"
            defer { StudioInTmuxTests.killProcesses(usingStore: h); try? FileManager.default.removeItem(atPath: h) }
            let t = try TmuxStudio(home: h)
            t.wait(for: "no characters yet")
            t.createCharacter("Q\(i)", prompt: "a robot waving, in a city, front view", baseWord: "robot", seed: "\(i + 1)")
            t.wait(for: "seed \(i + 1) · cfg 6 ·")
            t.keys("j", "j", "l")                                       // a new render starts after the debounce…
            Thread.sleep(forTimeInterval: 0.15 + 0.05 * Double(i))      // …and is running when q arrives
            t.keys("q")
            XCTAssertEqual(t.exitStatus(), 0, "quit \(i): \((try? String(contentsOfFile: h + "/studio-stderr", encoding: .utf8)) ?? "")")
        }
    }

    func testTuningJobPlotsAdvancesAndCancels() throws {
        let t = try TmuxStudio(home: home)
        t.wait(for: "no characters yet")
        t.createCharacter("Cy", prompt: "a wizard waving, smiling, in a forest, front view", baseWord: "wizard", seed: "5")
        t.wait(for: "seed 5 · cfg")
        t.keys("a"); t.wait(for: "accepted as a reference of Cy")
        t.keys("4"); t.wait(for: "Runs · Cy")
        t.keys("s")
        let s1 = t.wait(for: "stage1       running")
        XCTAssertTrue(s1.contains("Runs · Cy"))
        func step(_ s: String) -> Int? {
            guard let r = s.range(of: #"step (\d+)/"#, options: .regularExpression) else { return nil }
            return Int(s[r].dropFirst(5).dropLast())
        }
        let end = Date().addingTimeInterval(60)
        var steps: [Int] = []
        while Date() < end, steps.count < 2 || steps.last! <= steps.first! {
            if let n = step(t.screen), steps.last != n { steps.append(n) }
            Thread.sleep(forTimeInterval: 0.3)
        }
        XCTAssertGreaterThan(steps.last ?? 0, steps.first ?? 0, "the plot's step did not advance: \(steps)")
        XCTAssertTrue(t.screen.contains("■ loss"), "the loss plot has its series")
        // The job outlives the studio and a new studio reattaches to it.
        t.keys("q"); XCTAssertEqual(t.exitStatus(), 0)
        let runs = try FileManager.default.contentsOfDirectory(atPath: home + "/characters/Cy/runs").filter { !$0.hasPrefix(".") }
        XCTAssertEqual(runs.count, 1)
        let lock = try String(contentsOfFile: "\(home)/characters/Cy/runs/\(runs[0])/.lock", encoding: .utf8)
        let pid = try XCTUnwrap(Int32(lock.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), 0, "the job died with the studio")
        try? FileManager.default.removeItem(atPath: home + "/exit-status")
        let again = try TmuxStudio(home: home)
        again.wait(for: "▸ Cy")
        again.keys("4")
        again.wait(for: "stage1       running")
        again.keys("c")
        again.wait(for: "cancelled")
        // A second run started here is selected when it appears (its plot is the one shown),
        // though the stage-1 run was selected when the key came.
        again.keys("o")
        again.wait(for: "▸ oneactor     running")
        again.keys("c")
        again.wait(for: "▸ oneactor     cancelled")
        again.keys("q"); XCTAssertEqual(again.exitStatus(), 0)
    }

    /// SIGTERM and SIGHUP (an SSH drop) end the studio with the terminal restored.
    func testSignalsRestoreTheTerminal() throws {
        for sig in [SIGTERM, SIGHUP, SIGINT] {
            let h = home + "-sig\(sig)"
            defer { StudioInTmuxTests.killProcesses(usingStore: h); try? FileManager.default.removeItem(atPath: h) }
            let t = try TmuxStudio(home: h)
            t.wait(for: "no characters yet")
            let marker = Data("TROUPE_HOME=\(h)\0".utf8)
            let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { e -> Int32? in
                guard let pid = Int32(e), let env = FileManager.default.contents(atPath: "/proc/\(e)/environ"), env.range(of: marker) != nil,
                      let cmd = FileManager.default.contents(atPath: "/proc/\(e)/cmdline"),
                      String(decoding: cmd, as: UTF8.self).hasSuffix("troupe\0") else { return nil }
                return pid
            }
            XCTAssertEqual(pids.count, 1, "one studio process")
            kill(pids[0], sig)
            let status = try XCTUnwrap(t.exitStatus(), "the studio did not exit on signal \(sig)")
            XCTAssertNotEqual(status, 0)
            XCTAssertEqual(try String(contentsOfFile: h + "/stty-before", encoding: .utf8), try String(contentsOfFile: h + "/stty-after", encoding: .utf8),
                           "signal \(sig) left the terminal changed")
        }
    }

    func testWorksOnOtherTerminals() throws {
        for (term, env) in [("screen", [String: String]()), ("vt100", [:]), ("xterm-256color", ["NO_COLOR": "1"]), ("tmux-256color", [:])] {
            let t = try TmuxStudio(home: home + "-\(term)", term: term, environment: env)
            let s = t.wait(for: "no characters yet")
            XCTAssertTrue(s.contains("Characters (0)"), "\(term) \(env)")
            t.keys("3"); t.wait(for: "Settings")
            t.keys("q")
            XCTAssertEqual(t.exitStatus(), 0, "\(term) \(env): \((try? String(contentsOfFile: home + "-\(term)/studio-stderr", encoding: .utf8)) ?? "")")
            StudioInTmuxTests.killProcesses(usingStore: home + "-\(term)")
            try? FileManager.default.removeItem(atPath: home + "-\(term)")
        }
    }

    func testTinyTerminalAsksToEnlarge() throws {
        let t = try TmuxStudio(home: home, width: 40, height: 10)
        t.wait(for: "enlarge the terminal")
        t.resize(110, 34)
        t.wait(for: "no characters yet")
        t.keys("q"); XCTAssertEqual(t.exitStatus(), 0)
    }

    func testRandomKeysAndResizesNeitherCrashNorHurtTheStore() throws {
        // A character made with the CLI beforehand, to check it survives.
        let env = ["TROUPE_HOME": home, "PATH": "/usr/bin:/bin"]
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        XCTAssertEqual(try TroupeRun.run(["character", "new", "Keep", "--prompt", "a knight in a forest", "--base-word", "knight"], environment: env).status, 0)
        let t = try TmuxStudio(home: home)
        t.wait(for: "Keep")
        var rng = SystemRandomNumberGenerator()
        let named = ["Up", "Down", "Left", "Right", "Enter", "Escape", "Tab", "BTab", "BSpace", "Home", "End", "PPage", "NPage", "DC"]
        let chars = Array("abcdefghijklmnoprstuvwxyzABCDHLMR0123456789/?<>.,;: -_")   // no q: quitting ends the storm early
        for i in 0..<500 {
            if i % 25 == 0 { t.resize(Int.random(in: 20...140, using: &rng), Int.random(in: 6...45, using: &rng)) }
            if Bool.random(using: &rng) { t.keys(named.randomElement(using: &rng)!) } else { t.type(String(chars.randomElement(using: &rng)!)) }
        }
        t.resize(110, 34)
        Thread.sleep(forTimeInterval: 1)
        XCTAssertNil(try? String(contentsOfFile: home + "/exit-status", encoding: .utf8), "the studio exited during the storm: \((try? String(contentsOfFile: home + "/studio-stderr", encoding: .utf8)) ?? "")")
        t.keys("Escape"); t.keys("Escape"); t.keys("Escape"); Thread.sleep(forTimeInterval: 0.3); t.keys("q")
        XCTAssertEqual(t.exitStatus(), 0, "\(t.screen)\n\((try? String(contentsOfFile: home + "/studio-stderr", encoding: .utf8)) ?? "")")
        let list = try TroupeRun.run(["character", "list", "--json"], environment: env)
        XCTAssertEqual(list.status, 0, list.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [String: Any]
        XCTAssertEqual((obj?["errors"] as? [Any])?.count, 0, list.stdout)
        let before = try String(contentsOfFile: home + "/stty-before", encoding: .utf8)
        XCTAssertEqual(before, try String(contentsOfFile: home + "/stty-after", encoding: .utf8))
    }
}
