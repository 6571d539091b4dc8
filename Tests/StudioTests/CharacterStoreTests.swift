// The character store: names that cannot escape the store, broken files named with reasons,
// schema versions refused or migrated, locks that name their holder, and concurrent accepts
// from two processes that lose nothing.

import XCTest
import Preview
@testable import Studio

final class CharacterStoreTests: XCTestCase {
    var root = ""

    override func setUp() {
        root = NSTemporaryDirectory() + "troupe-store-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    var store: CharacterStore { CharacterStore(root: root) }
    var env: [String: String] { ProcessInfo.processInfo.environment.merging(["TROUPE_HOME": root]) { $1 } }

    static func png(_ path: String, seed: UInt8) throws {
        let px = (0..<(8 * 8 * 3)).map { UInt8(truncatingIfNeeded: Int($0) * 7 + Int(seed) * 31) }
        try PNGCodec.write(RGBImage(width: 8, height: 8, pixels: px), to: path)
    }

    func troupe(_ args: [String]) throws -> TroupeRun { try TroupeRun.run(args, environment: env) }

    func testNamesAreValidatedAndNeverEscapeTheStore() throws {
        for ok in ["Ada", "Sir Réd the Bold", "忍者 ninja", "knight😀", String(repeating: "x", count: 64)] {
            let r = try store.create(ok, prompt: "a knight", baseWord: "knight", seed: 1, model: "troupe-mini")
            XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/characters/" + r.name + "/character.json"), ok)
            XCTAssertEqual(try store.load(ok).name, r.name)
        }
        for bad in ["../escape", "a/b", ".hidden", "", "   ", "..", String(repeating: "y", count: 65), "tab\there", " lead"] {
            XCTAssertThrowsError(try store.create(bad, prompt: "a knight", baseWord: "knight", seed: 1, model: "m"), bad) { e in
                guard case StoreError.badName = e else { return XCTFail("\(bad): \(e)") }
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/escape"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: (root as NSString).deletingLastPathComponent + "/escape"))
        XCTAssertThrowsError(try store.create("Ada", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")) { e in
            XCTAssertEqual(e as? StoreError, .exists("Ada"))
        }
        XCTAssertThrowsError(try store.create("Bo", prompt: "a knight", baseWord: "wizard", seed: 1, model: "m"))
        // Through the CLI: a refused name is a usage error (exit 2) with the reason.
        let r = try troupe(["character", "new", "../../x", "--prompt", "a knight", "--base-word", "knight"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("path separator"), r.stderr)
    }

    func testBrokenFilesAreNamedAndTheOthersStillListed() throws {
        _ = try store.create("good", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let valid = try String(contentsOfFile: store.recordPath("good"), encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("truncated", String(valid.prefix(valid.count / 2)), "not valid JSON"),
            ("garbage", "this is not json", "not valid JSON"),
            ("wrongtype", valid.replacingOccurrences(of: "\"seed\" : 1", with: "\"seed\" : \"one\""), "seed"),
            ("missing", "{\"schema_version\": 1, \"name\": \"missing\"}", "missing key 'prompt'"),
        ]
        for (name, text, _) in cases {
            try FileManager.default.createDirectory(atPath: store.folder(name), withIntermediateDirectories: true)
            try text.write(toFile: store.recordPath(name), atomically: true, encoding: .utf8)
        }
        let listing = store.list()
        XCTAssertEqual(listing.records.map(\.name), ["good"])
        XCTAssertEqual(Set(listing.errors.map(\.name)), Set(cases.map(\.0)))
        for (name, _, reason) in cases {
            let e = try XCTUnwrap(listing.errors.first { $0.name == name })
            XCTAssertTrue(e.reason.contains(reason) && e.reason.contains(store.recordPath(name)), "\(name): \(e.reason)")
        }
        let r = try troupe(["character", "list", "--json"])
        XCTAssertEqual(r.status, 1, "a broken file is a problem the exit status reports")
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["characters"] as? [String], ["good"])
        XCTAssertEqual((obj["errors"] as? [[String: Any]])?.count, cases.count)
    }

    func testNewerSchemaIsRefusedAndLeftUntouched() throws {
        _ = try store.create("future", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let text = try String(contentsOfFile: store.recordPath("future"), encoding: .utf8)
            .replacingOccurrences(of: "\"schema_version\" : 1", with: "\"schema_version\" : 99")
        try text.write(toFile: store.recordPath("future"), atomically: true, encoding: .utf8)
        let img = root + "/a.png"
        try Self.png(img, seed: 1)
        XCTAssertThrowsError(try store.add("future", images: [img], accepted: true)) { e in
            XCTAssertTrue("\(e)".contains("schema version 99 is newer"), "\(e)")
        }
        XCTAssertEqual(try String(contentsOfFile: store.recordPath("future"), encoding: .utf8), text)
    }

    func testOlderSchemaIsMigratedWithABackup() throws {
        try FileManager.default.createDirectory(atPath: store.folder("old") + "/refs", withIntermediateDirectories: true)
        try Self.png(store.folder("old") + "/refs/first.png", seed: 3)
        let v0 = """
        {"name": "old", "prompt": "a wizard", "base_word": "wizard", "seed": 5, "model": "troupe-mini",
         "created": "2026-01-01T00:00:00Z", "accepted": ["first.png"]}
        """
        try v0.write(toFile: store.recordPath("old"), atomically: true, encoding: .utf8)
        let img = root + "/b.png"
        try Self.png(img, seed: 2)
        let r = try store.add("old", images: [img], accepted: true)
        XCTAssertEqual(r.schemaVersion, 1)
        XCTAssertEqual(r.references.map(\.file).first, "refs/first.png")
        XCTAssertEqual(r.references.count, 2)
        XCTAssertEqual(try String(contentsOfFile: store.recordPath("old") + ".v0.bak", encoding: .utf8), v0)
    }

    func testAHeldCharacterNamesItsHolder() throws {
        _ = try store.create("busy", prompt: "a robot", baseWord: "robot", seed: 1, model: "m")
        let img = root + "/c.png"
        try Self.png(img, seed: 4)
        let held = try FileLock(path: store.folder("busy") + "/.lock", name: "busy", wait: false)
        let r = try troupe(["character", "accept", "busy", img])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("in use by PID \(getpid())"), r.stderr)
        withExtendedLifetime(held) {}
    }

    func testTwoProcessesAcceptingConcurrentlyLoseNoEntry() throws {
        _ = try store.create("shared", prompt: "a pirate", baseWord: "pirate", seed: 1, model: "m")
        var images: [[String]] = [[], []]
        for p in 0..<2 { for i in 0..<8 {
            let path = root + "/p\(p)-\(i).png"
            try Self.png(path, seed: UInt8(p * 8 + i))
            images[p].append(path)
        } }
        // Each process accepts its images one call at a time, both at once, with --wait.
        final class Failures: @unchecked Sendable { let lock = NSLock(); var list: [String] = [] }
        let failures = Failures()
        let lists = images
        DispatchQueue.concurrentPerform(iterations: 2) { p in
            for img in lists[p] {
                let r = try? self.troupe(["character", "accept", "shared", "--wait", img])
                if r?.status != 0 { failures.lock.lock(); failures.list.append(r?.stderr ?? "spawn failed"); failures.lock.unlock() }
            }
        }
        XCTAssertEqual(failures.list, [])
        let r = try store.load("shared")
        XCTAssertEqual(r.references.count, 16)
        XCTAssertEqual(Set(r.references.compactMap(\.source)), Set(images.flatMap { $0 }.map { ($0 as NSString).standardizingPath }))
        XCTAssertEqual(Set(r.references.map(\.file)).count, 16)
        for e in r.references { XCTAssertNoThrow(try PNGCodec.read(path: store.folder("shared") + "/" + e.file)) }
    }

    func testDeleteMovesToTrashRenameAndPurge() throws {
        _ = try store.create("temp", prompt: "a chef", baseWord: "chef", seed: 1, model: "m")
        let moved = try XCTUnwrap(try store.delete("temp", purge: false))
        XCTAssertTrue(moved.hasPrefix(root + "/trash/temp-"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: moved + "/character.json"))
        XCTAssertThrowsError(try store.load("temp"))
        _ = try store.create("a", prompt: "a chef", baseWord: "chef", seed: 1, model: "m")
        _ = try store.create("b", prompt: "a chef", baseWord: "chef", seed: 1, model: "m")
        XCTAssertThrowsError(try store.rename("a", to: "b")) { XCTAssertEqual($0 as? StoreError, .exists("b")) }
        XCTAssertThrowsError(try store.rename("a", to: "../c"))
        XCTAssertEqual(try store.rename("a", to: "Ana").name, "Ana")
        XCTAssertEqual(try store.load("Ana").name, "Ana")
        XCTAssertNil(try store.delete("Ana", purge: true))
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.folder("Ana")))
    }
}
