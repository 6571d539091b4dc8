// The character store (design §6): `<root>/characters/<name>/` with character.json, refs/,
// rejected/, runs/, generations/, grids/; deleted characters move to `<root>/trash/`.
// Every change is a transaction under the character's lock: read character.json, change,
// write it atomically (temp + fsync + rename + directory fsync). Two processes accepting into
// one character therefore never lose an entry, and a crash leaves the old or the new file.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import FileSafety
import Pipeline
import Preview

struct CharacterStore {
    let root: String
    var wait = false
    /// How files are written (atomically); tests replace it to make a write fail (a full disk).
    var writeFile: (Data, String) throws -> Void = { try AtomicFile.write($0, to: $1) }

    init(root: String = StorePaths.root(), wait: Bool = false) { self.root = root; self.wait = wait }

    var charactersDir: String { root + "/characters" }

    /// The folder of a (validated, NFC) name. A folder written in another normalisation (NFD,
    /// as macOS sync tools leave it) is found by comparing NFC forms.
    func folder(_ name: String) -> String {
        let direct = charactersDir + "/" + name
        if FileManager.default.fileExists(atPath: direct) { return direct }
        if let other = ((try? FileManager.default.contentsOfDirectory(atPath: charactersDir)) ?? [])
            .first(where: { Array($0.utf8) != Array(name.utf8) && $0 == name }) {   // Swift's == is canonical equivalence
            return charactersDir + "/" + other
        }
        return direct
    }
    func recordPath(_ name: String) -> String { folder(name) + "/character.json" }

    // MARK: reading

    struct Listing {
        var records: [CharacterRecord]
        /// Folders whose character.json could not be read: (folder name, reason).
        var errors: [(name: String, file: String, reason: String)]
    }

    func list() -> Listing {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: charactersDir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        var out = Listing(records: [], errors: [])
        for n in names {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder(n), isDirectory: &isDir), isDir.boolValue else { continue }
            if isInterruptedCreation(n) {
                out.errors.append((n, recordPath(n), "an interrupted `character new` (empty folder); `character new \(n) …` takes the name over"))
                continue
            }
            do { out.records.append(try load(n)) } catch {
                out.errors.append((n, recordPath(n), "\(error)"))
            }
        }
        return out
    }

    func load(_ rawName: String) throws -> CharacterRecord {
        let name = try CharacterName.validated(rawName)
        let path = recordPath(name)
        guard FileManager.default.fileExists(atPath: path) else {
            if FileManager.default.fileExists(atPath: folder(name)) { throw StoreError.corrupt(file: path, reason: "missing") }
            throw StoreError.notFound(name)
        }
        guard let data = FileManager.default.contents(atPath: path) else { throw StoreError.io(path: path, reason: "cannot read (permissions?)") }
        let record = try CharacterRecord.decode(data, file: path).0
        try checkContained(record, name: name, file: path)
        return record
    }

    /// A record names its own folder and only files inside it (refs/ and rejected/), so a
    /// copied or edited character.json cannot send tuning runs or reads elsewhere.
    func checkContained(_ r: CharacterRecord, name: String, file: String) throws {
        guard r.name.precomposedStringWithCanonicalMapping == name else {
            throw StoreError.corrupt(file: file, reason: "its name '\(r.name)' is not its folder's ('\(name)'); rename the folder or fix the name")
        }
        for f in r.references.map(\.file) + r.rejected.map(\.file) + [r.target].compactMap({ $0 }) {
            let parts = f.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "refs" || parts[0] == "rejected", !parts[1].isEmpty, parts[1] != ".", parts[1] != ".." else {
                throw StoreError.corrupt(file: file, reason: "image '\(f)' is not a file in refs/ or rejected/")
            }
        }
    }

    /// An empty character folder: what a crash between claiming a name and moving the new
    /// character in leaves.
    func isInterruptedCreation(_ name: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder(name))) ?? ["?"]).isEmpty
    }

    // MARK: writing

    /// Runs `change` on the character's record under its lock and saves the result. An older
    /// schema is migrated here, keeping `character.json.v<N>.bak`.
    @discardableResult
    func update(_ rawName: String, _ change: (inout CharacterRecord, String) throws -> Void) throws -> CharacterRecord {
        try locked(rawName) { name in
            let path = recordPath(name)
            guard let data = FileManager.default.contents(atPath: path) else { throw StoreError.corrupt(file: path, reason: "missing or unreadable") }
            var (record, migratedFrom) = try CharacterRecord.decode(data, file: path)
            if let old = migratedFrom { try write(data, to: path + ".v\(old).bak") }
            try change(&record, folder(name))
            try save(record, to: path)
            return record
        }
    }

    /// Runs `body` with the (validated) name of an existing character while holding its lock.
    func locked<T>(_ rawName: String, _ body: (String) throws -> T) throws -> T {
        let name = try CharacterName.validated(rawName)
        guard FileManager.default.fileExists(atPath: folder(name)) else { throw StoreError.notFound(name) }
        let lock = try FileLock(path: folder(name) + "/.lock", name: name, wait: wait)
        return try withExtendedLifetime(lock) { try body(name) }
    }

    /// Claims a character folder name between processes: mkdir either creates it or fails.
    func claim(_ name: String) throws {
        guard mkdir(folder(name), 0o755) == 0 else {
            if errno == EEXIST { throw StoreError.exists(name) }
            throw StoreError.io(path: folder(name), reason: String(cString: strerror(errno)))
        }
    }

    func save(_ record: CharacterRecord, to path: String) throws {
        try write(try CharacterRecord.encoder().encode(record), to: path)
    }

    func write(_ data: Data, to path: String) throws {
        do { try writeFile(data, path) } catch { throw StoreError.io(path: path, reason: "\(error)") }
    }

    func create(_ rawName: String, prompt: String, baseWord: String, seed: UInt64, model: String) throws -> CharacterRecord {
        let name = try CharacterName.validated(rawName)
        guard !prompt.trimmingCharacters(in: .whitespaces).isEmpty else { throw StoreError.badName(name, reason: "the prompt is empty") }
        let words = prompt.lowercased().split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        guard words.contains(baseWord.lowercased()) else {
            throw StoreError.badImage(file: "--base-word", reason: "'\(baseWord)' is not a word of the prompt '\(prompt)' (OneActor offsets the base word's token)")
        }
        let fm = FileManager.default
        do { try fm.createDirectory(atPath: charactersDir, withIntermediateDirectories: true) } catch {
            throw StoreError.io(path: charactersDir, reason: "\(error)")
        }
        // All or nothing: claim the name (mkdir), build the whole character in a hidden staging
        // folder, then rename it onto the claimed (empty) folder. A failure removes both; a crash
        // leaves at most an empty folder, which `list` reports as an interrupted creation and a
        // new `create` takes over.
        if FileManager.default.fileExists(atPath: folder(name)), isInterruptedCreation(name) { rmdir(folder(name)) }
        try claim(name)
        let staging = charactersDir + "/.new-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            for sub in ["refs", "rejected", "oneactor", "lora", "runs", "generations", "grids"] {
                try fm.createDirectory(atPath: staging + "/" + sub, withIntermediateDirectories: true)
            }
            let record = CharacterRecord(name: name, prompt: prompt, baseWord: baseWord, seed: seed, model: model)
            try save(record, to: staging + "/character.json")
            guard Glibc.rename(staging, folder(name)) == 0 else { throw StoreError.io(path: folder(name), reason: String(cString: strerror(errno))) }
            return record
        } catch {
            try? fm.removeItem(atPath: staging)
            rmdir(folder(name))
            if let e = error as? StoreError { throw e }
            throw StoreError.io(path: staging, reason: "\(error)")
        }
    }

    /// Copies each PNG (validated by decoding it) into refs/ or rejected/ and records it.
    func add(_ rawName: String, images: [String], accepted: Bool) throws -> CharacterRecord {
        var payloads: [(String, Data)] = []
        for p in images {
            if let why = RegularFile.problem(p) { throw StoreError.badImage(file: p, reason: why) }
            guard let d = FileManager.default.contents(atPath: p) else { throw StoreError.badImage(file: p, reason: "cannot read the file") }
            do { _ = try PNGCodec.read(path: p) } catch { throw StoreError.badImage(file: p, reason: "not a readable PNG: \(error)") }
            payloads.append((p, d))
        }
        // All or nothing: the copies are removed again when the record cannot be written.
        var written: [String] = []
        do {
          return try update(rawName) { record, folder in
            let sub = accepted ? "refs" : "rejected"
            var next = (record.references + record.rejected).count + 1
            for (source, data) in payloads {
                let base = Self.prefix(((source as NSString).lastPathComponent as NSString).deletingPathExtension, bytes: 120)
                var file: String
                repeat {
                    file = sub + "/" + String(format: "%04d-", next) + base + ".png"
                    next += 1
                } while FileManager.default.fileExists(atPath: folder + "/" + file)
                try write(data, to: folder + "/" + file)
                written.append(folder + "/" + file)
                let entry = CharacterRecord.ImageEntry(file: file, source: (source as NSString).standardizingPath, added: Date())
                if accepted { record.references.append(entry); if record.target == nil { record.target = file } } else { record.rejected.append(entry) }
            }
          }
        } catch {
            for f in written { try? FileManager.default.removeItem(atPath: f) }
            throw error
        }
    }

    /// The longest prefix of `s` that fits in `bytes` UTF-8 bytes, cut between characters
    /// (file names are limited in bytes: 255 on Linux).
    static func prefix(_ s: String, bytes: Int) -> String {
        var out = "", used = 0
        for ch in s {
            let n = String(ch).utf8.count
            if used + n > bytes { break }
            out.append(ch); used += n
        }
        return out
    }

    /// The pid of a live tuning job driving one of the character's runs (nil: none). Such a
    /// job writes into the character's folder until it ends, so the folder must not move.
    func runningJob(_ name: String) -> Int32? {
        let runs = folder(name) + "/runs"
        let ids = (try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []
        return ids.sorted().lazy.compactMap { RunWatch.holder(lockPath: runs + "/" + $0 + "/.lock") }.first
    }

    /// Moves the character to trash/ (or removes it with `purge`); refused while a tuning job
    /// runs for it (the job would recreate the folder it writes to).
    func delete(_ rawName: String, purge: Bool) throws -> String? {
        try locked(rawName) { name in
            if let pid = runningJob(name) { throw StoreError.jobRunning(name: name, pid: pid) }
            if purge {
                do { try FileManager.default.removeItem(atPath: folder(name)) } catch { throw StoreError.io(path: folder(name), reason: "\(error)") }
                return nil
            }
            let trash = root + "/trash"
            try? FileManager.default.createDirectory(atPath: trash, withIntermediateDirectories: true)
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            // Two deletes of one name in a second must not collide: claim a fresh trash name.
            var dest = trash + "/" + name + "-" + stamp, k = 1
            while mkdir(dest, 0o755) != 0 {
                guard errno == EEXIST, k < 1000 else { throw StoreError.io(path: dest, reason: String(cString: strerror(errno))) }
                k += 1; dest = trash + "/" + name + "-" + stamp + "-\(k)"
            }
            guard Glibc.rename(folder(name), dest) == 0 else {
                let e = String(cString: strerror(errno)); rmdir(dest)
                throw StoreError.io(path: folder(name), reason: e)
            }
            return dest
        }
    }

    func rename(_ oldRaw: String, to newRaw: String) throws -> CharacterRecord {
        let new = try CharacterName.validated(newRaw)
        return try locked(oldRaw) { old in
            if let pid = runningJob(old) { throw StoreError.jobRunning(name: old, pid: pid) }
            var record = try load(old)
            // Directories cannot be hard-linked: claim the new name with mkdir, then move the
            // folder onto it with rename (an atomic replace of an empty directory).
            try claim(new)
            guard Glibc.rename(folder(old), folder(new)) == 0 else {
                let e = String(cString: strerror(errno)); rmdir(folder(new))
                throw StoreError.io(path: folder(old), reason: e)
            }
            record.name = new
            // All or nothing: if the record cannot be written in its new place, the folder moves back.
            do { try save(record, to: recordPath(new)) } catch {
                if Glibc.rename(folder(new), folder(old)) != 0 { throw StoreError.io(path: folder(new), reason: "\(error); and moving it back failed: \(String(cString: strerror(errno)))") }
                throw error
            }
            return record
        }
    }
}
