// The character store (design §6): `<root>/characters/<name>/` with character.json, refs/,
// rejected/, runs/, generations/, grids/; deleted characters move to `<root>/trash/`.
// Every change is a transaction under the character's lock: read character.json, change,
// write it atomically (temp + fsync + rename + directory fsync). Two processes accepting into
// one character therefore never lose an entry, and a crash leaves the old or the new file.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Pipeline
import Preview

struct CharacterStore {
    let root: String
    var wait = false

    init(root: String = StorePaths.root(), wait: Bool = false) { self.root = root; self.wait = wait }

    var charactersDir: String { root + "/characters" }
    func folder(_ name: String) -> String { charactersDir + "/" + name }
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
        guard let data = FileManager.default.contents(atPath: path) else { throw StoreError.io(path: path, reason: "cannot read") }
        return try CharacterRecord.decode(data, file: path).0
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
        do { try AtomicFile.write(data, to: path) } catch { throw StoreError.io(path: path, reason: "\(error)") }
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
        try claim(name)
        for sub in ["refs", "rejected", "oneactor", "lora", "runs", "generations", "grids"] {
            try? fm.createDirectory(atPath: folder(name) + "/" + sub, withIntermediateDirectories: true)
        }
        let record = CharacterRecord(name: name, prompt: prompt, baseWord: baseWord, seed: seed, model: model)
        try save(record, to: recordPath(name))
        return record
    }

    /// Copies each PNG (validated by decoding it) into refs/ or rejected/ and records it.
    func add(_ rawName: String, images: [String], accepted: Bool) throws -> CharacterRecord {
        var payloads: [(String, Data)] = []
        for p in images {
            guard let d = FileManager.default.contents(atPath: p) else { throw StoreError.badImage(file: p, reason: "cannot read the file") }
            do { _ = try PNGCodec.read(path: p) } catch { throw StoreError.badImage(file: p, reason: "not a readable PNG: \(error)") }
            payloads.append((p, d))
        }
        return try update(rawName) { record, folder in
            let sub = accepted ? "refs" : "rejected"
            var next = (record.references + record.rejected).count + 1
            for (source, data) in payloads {
                let base = ((source as NSString).lastPathComponent as NSString).deletingPathExtension
                var file: String
                repeat {
                    file = sub + "/" + String(format: "%04d-", next) + String(base.prefix(80)) + ".png"
                    next += 1
                } while FileManager.default.fileExists(atPath: folder + "/" + file)
                try write(data, to: folder + "/" + file)
                let entry = CharacterRecord.ImageEntry(file: file, source: (source as NSString).standardizingPath, added: Date())
                if accepted { record.references.append(entry); if record.target == nil { record.target = file } } else { record.rejected.append(entry) }
            }
        }
    }

    /// Moves the character to trash/ (or removes it with `purge`).
    func delete(_ rawName: String, purge: Bool) throws -> String? {
        try locked(rawName) { name in
            if purge {
                do { try FileManager.default.removeItem(atPath: folder(name)) } catch { throw StoreError.io(path: folder(name), reason: "\(error)") }
                return nil
            }
            let trash = root + "/trash"
            try? FileManager.default.createDirectory(atPath: trash, withIntermediateDirectories: true)
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let dest = trash + "/" + name + "-" + stamp
            guard Glibc.rename(folder(name), dest) == 0 else { throw StoreError.io(path: folder(name), reason: String(cString: strerror(errno))) }
            return dest
        }
    }

    func rename(_ oldRaw: String, to newRaw: String) throws -> CharacterRecord {
        let new = try CharacterName.validated(newRaw)
        return try locked(oldRaw) { old in
            var record = try load(old)
            // Directories cannot be hard-linked: claim the new name with mkdir, then move the
            // folder onto it with rename (an atomic replace of an empty directory).
            try claim(new)
            guard Glibc.rename(folder(old), folder(new)) == 0 else {
                let e = String(cString: strerror(errno)); rmdir(folder(new))
                throw StoreError.io(path: folder(old), reason: e)
            }
            record.name = new
            try save(record, to: recordPath(new))
            return record
        }
    }
}
