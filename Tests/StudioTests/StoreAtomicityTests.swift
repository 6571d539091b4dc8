// Every store change is all or nothing: a record write that fails (a full disk, simulated by
// the store's write seam) leaves the character as it was — rename moves the folder back, a new
// character leaves no folder, accepted images leave no stray files. Records cannot point
// outside their folder; folder names from other normalisations are found; deletes do not
// collide in trash/; long names are cut by bytes.

import XCTest
import Preview
import Pipeline
@testable import Studio

final class StoreAtomicityTests: XCTestCase {
    var root = ""
    override func setUp() {
        root = NSTemporaryDirectory() + "troupe-atomic-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

    struct DiskFull: Error {}
    /// A store whose writes to character.json fail.
    var failing: CharacterStore {
        var s = CharacterStore(root: root)
        s.writeFile = { data, path in
            if path.hasSuffix("character.json") { throw DiskFull() }
            try AtomicFile.write(data, to: path)
        }
        return s
    }
    var store: CharacterStore { CharacterStore(root: root) }

    func files(_ dir: String) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() }

    func testRenameThatCannotWriteMovesTheFolderBack() throws {
        _ = try store.create("Ada", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        XCTAssertThrowsError(try failing.rename("Ada", to: "Bea"))
        XCTAssertEqual(try store.load("Ada").name, "Ada")
        XCTAssertFalse(FileManager.default.fileExists(atPath: store.folder("Bea")), "the new name stays free")
        XCTAssertEqual(try store.rename("Ada", to: "Bea").name, "Bea")
    }

    func testCreateThatCannotWriteLeavesNothingAndAnInterruptedOneIsTakenOver() throws {
        XCTAssertThrowsError(try failing.create("Cy", prompt: "a knight", baseWord: "knight", seed: 1, model: "m"))
        XCTAssertEqual(files(store.charactersDir), [], "no folder blocks the name, no staging left")
        // A crash between claim and move leaves an empty folder: listed as such, then taken over.
        try FileManager.default.createDirectory(atPath: store.folder("Cy"), withIntermediateDirectories: true)
        let listing = store.list()
        XCTAssertTrue(listing.errors.first?.reason.contains("interrupted") ?? false, "\(listing.errors)")
        XCTAssertEqual(try store.create("Cy", prompt: "a knight", baseWord: "knight", seed: 1, model: "m").name, "Cy")
        XCTAssertEqual(store.list().records.map(\.name), ["Cy"])
    }

    func testAcceptThatCannotWriteLeavesNoFiles() throws {
        _ = try store.create("Di", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let png = root + "/x.png"
        try PNGCodec.write(RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 9, count: 48)), to: png)
        XCTAssertThrowsError(try failing.add("Di", images: [png, png], accepted: true))
        XCTAssertEqual(files(store.folder("Di") + "/refs"), [])
        XCTAssertEqual(try store.load("Di").references.count, 0)
    }

    func testRecordsCannotPointOutsideTheirFolder() throws {
        _ = try store.create("Ed", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let path = store.recordPath("Ed")
        let original = try String(contentsOfFile: path, encoding: .utf8)
        for (edit, expect) in [(original.replacingOccurrences(of: "\"name\" : \"Ed\"", with: "\"name\" : \"../../tmp/x\""), "not its folder"),
                               (original.replacingOccurrences(of: "\"references\" : [\n\n  ]", with: "\"references\" : [{\"file\": \"../../../../etc/hostname\", \"added\": \"2026-01-01T00:00:00Z\"}]"), "refs/"),
                               (original.replacingOccurrences(of: "\"references\" : [\n\n  ]", with: "\"references\" : [{\"file\": \"/etc/hostname\", \"added\": \"2026-01-01T00:00:00Z\"}]"), "refs/")] {
            XCTAssertNotEqual(edit, original, "the edit applies")
            try edit.write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try store.load("Ed")) { e in XCTAssertTrue("\(e)".contains(expect), "\(e)") }
        }
    }

    func testNFDFoldersTwoDeletesAndLongNames() throws {
        // A folder named in NFD (as synced from macOS) is the NFC name's folder.
        let nfc = "Réne", nfd = nfc.decomposedStringWithCanonicalMapping
        XCTAssertNotEqual(Array(nfc.utf8), Array(nfd.utf8))
        _ = try store.create(nfc, prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let dir = store.charactersDir
        try FileManager.default.moveItem(atPath: dir + "/" + nfc, toPath: dir + "/" + nfd)
        XCTAssertEqual(try store.load(nfc).name, nfc)
        // Two deletes of the same name within a second both land in trash/.
        _ = try store.delete(nfc, purge: false)
        _ = try store.create(nfc, prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        _ = try store.delete(nfc, purge: false)
        XCTAssertEqual(files(root + "/trash").count, 2)
        // A long emoji file name is cut by bytes, between characters.
        _ = try store.create("Fi", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        let long = root + "/" + String(repeating: "🤖", count: 62) + ".png"
        try PNGCodec.write(RGBImage(width: 4, height: 4, pixels: [UInt8](repeating: 9, count: 48)), to: long)
        let r = try store.add("Fi", images: [long], accepted: true)
        let name = (r.references[0].file as NSString).lastPathComponent
        XCTAssertLessThanOrEqual(name.utf8.count, 255)
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.folder("Fi") + "/" + r.references[0].file))
    }
}

final class OutputPathTests: XCTestCase {
    /// -o through a symlink replaces the link's target (the link stays); a FIFO or device is
    /// refused with a clear message; a long file name leaves room for the temp file.
    func testOutputsFollowSymlinksAndRefuseSpecialFiles() throws {
        let dir = NSTemporaryDirectory() + "troupe-out-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let img = RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 200, count: 12))
        try Data("old".utf8).write(to: URL(fileURLWithPath: dir + "/real.png"))
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.png", withDestinationPath: "real.png")
        try PNGCodec.write(img, to: dir + "/link.png")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link.png"), "real.png", "the link stays a link")
        XCTAssertEqual(try PNGCodec.read(path: dir + "/real.png").pixels, img.pixels)
        try AtomicFile.write(Data("x".utf8), to: dir + "/link.png")
        XCTAssertEqual(try String(contentsOfFile: dir + "/real.png", encoding: .utf8), "x")
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o644), 0)
        XCTAssertThrowsError(try PNGCodec.write(img, to: dir + "/fifo")) { e in XCTAssertTrue("\(e)".contains("FIFO"), "\(e)") }
        XCTAssertThrowsError(try AtomicFile.write(Data(), to: dir + "/fifo")) { e in XCTAssertTrue("\(e)".contains("FIFO"), "\(e)") }
        XCTAssertThrowsError(try PNGCodec.write(img, to: "/dev/null")) { e in XCTAssertTrue("\(e)".contains("device"), "\(e)") }
        XCTAssertThrowsError(try PNGCodec.write(img, to: dir)) { e in XCTAssertTrue("\(e)".contains("directory"), "\(e)") }
        let long = dir + "/" + String(repeating: "🤖", count: 62) + ".png"   // 252 bytes
        XCTAssertNoThrow(try PNGCodec.write(img, to: long))
    }
}

final class SpecialInputTests: XCTestCase {
    /// FIFOs and devices where a regular file is expected are refused at once, never read
    /// (a FIFO would block forever, /dev/zero would never end).
    func testFIFOsAndDevicesAreRefusedAsInputs() throws {
        let dir = NSTemporaryDirectory() + "troupe-special-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertEqual(mkfifo(dir + "/fifo", 0o644), 0)
        for p in [dir + "/fifo", "/dev/zero"] {
            XCTAssertThrowsError(try PNGCodec.read(path: p)) { e in XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)") }
            XCTAssertThrowsError(try PNGCodec.readText(path: p))
            XCTAssertThrowsError(try SafetensorsFile(path: p)) { e in XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)") }
        }
        let store = CharacterStore(root: dir + "/store")
        _ = try store.create("Ada", prompt: "a knight", baseWord: "knight", seed: 1, model: "m")
        XCTAssertThrowsError(try store.add("Ada", images: [dir + "/fifo"], accepted: true)) { e in XCTAssertTrue("\(e)".contains("FIFO"), "\(e)") }
    }
}
