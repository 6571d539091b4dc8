// Drives the studio in a real terminal: a private tmux server (its own socket) runs `troupe`
// in a pane; tests send keys (send-keys) and read the screen (capture-pane). The pane's shell
// records `stty -a` before and after the studio and its exit status, so tests can check that
// the terminal came back as it was.

import Foundation
import XCTest

final class TmuxStudio {
    let socket = "troupe-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let home: String
    static var available: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") }

    /// Starts the studio in a `width`×`height` pane with `TERM=term` and extra environment.
    init(home: String, width: Int = 110, height: Int = 34, term: String = "xterm-256color", environment: [String: String] = [:],
         arguments: String = "") throws {
        self.home = home
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        var env = ["TROUPE_HOME": home, "TERM": term, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"]
        env.merge(environment) { $1 }
        let exports = env.map { "\($0.key)='\($0.value)'" }.joined(separator: " ")
        let script = """
        stty -a > '\(home)/stty-before'; env -u NO_COLOR -u TROUPE_GRAPHICS -u COLORTERM \(exports) '\(TroupeRun.binary)' \(arguments) 2> '\(home)/studio-stderr'; \
        echo $? > '\(home)/exit-status'; stty -a > '\(home)/stty-after'; sleep 600
        """
        try tmux(["-f", "/dev/null", "new-session", "-d", "-x", String(width), "-y", String(height), "sh", "-c", script])
        try tmux(["set-option", "-g", "window-size", "manual"])
    }

    @discardableResult
    func tmux(_ args: [String]) throws -> String {
        // posix_spawn + waitpid, not Foundation's Process: the tmux server that a first command
        // forks inherits Process's exit-detection descriptor and keeps it open for its whole
        // life, so Process would never see the client exit. Output goes through a file.
        let outPath = NSTemporaryDirectory() + "/tmux-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv = (["/usr/bin/tmux", "-L", socket] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/usr/bin/tmux", &actions, nil, argv, environ) == 0 else { throw CocoaError(.executableLoad) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    }

    /// Named keys (tmux names: Enter, Escape, Tab, BTab, Up, Down, Left, Right, C-c) or characters.
    func keys(_ k: String...) { _ = try? tmux(["send-keys"] + k) }
    /// Literal text.
    func type(_ text: String) { _ = try? tmux(["send-keys", "-l", text]) }
    var screen: String { (try? tmux(["capture-pane", "-p"])) ?? "" }
    func resize(_ w: Int, _ h: Int) { _ = try? tmux(["resize-window", "-x", String(w), "-y", String(h)]) }

    /// How long a wait lasts before it fails: generous, since a wait returns as soon as its text
    /// appears and a loaded box (tests never fail because a box is slow) can take seconds per
    /// preview render (16.7 s for one 25-step render measured beside three evaluations).
    static let patience: Double = 180

    /// Waits until the screen contains `text`; returns the screen.
    @discardableResult
    func wait(for text: String, timeout: Double = patience, file: StaticString = #filePath, line: UInt = #line) -> String {
        wait(forAll: [text], timeout: timeout, file: file, line: line)
    }

    /// The screen once every one of `texts` is on it (a title and its footer's keys may reach
    /// tmux in separate writes, so a screen with the title alone can be a half-drawn one).
    @discardableResult
    func wait(forAll texts: [String], timeout: Double = patience, file: StaticString = #filePath, line: UInt = #line) -> String {
        let end = Date().addingTimeInterval(timeout)
        var s = ""
        while Date() < end {
            s = screen
            if texts.allSatisfy(s.contains) { return s }
            Thread.sleep(forTimeInterval: 0.1)
        }
        XCTFail("\(texts.filter { !s.contains($0) }) did not appear within \(timeout) s; the screen:\n\(s)", file: file, line: line)
        return s
    }

    /// The studio's exit status once it has exited (nil: still running after `timeout`).
    func exitStatus(timeout: Double = 60) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if let t = try? String(contentsOfFile: home + "/exit-status", encoding: .utf8), let v = Int32(t.trimmingCharacters(in: .whitespacesAndNewlines)) {
                Thread.sleep(forTimeInterval: 0.2)   // stty-after is written next
                return v
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    /// Creates a character through the New dialog (the Characters screen must be in front).
    func createCharacter(_ name: String, prompt: String, baseWord: String, seed: String) {
        keys("n"); wait(for: "New character")
        type(name); keys("Tab"); type(prompt); keys("Tab"); type(baseWord); keys("Tab"); type(seed)
        keys("Enter", "Enter", "Enter")   // past Model (empty: troupe-mini) to Create
    }

    deinit { _ = try? tmux(["kill-server"]) }
}
