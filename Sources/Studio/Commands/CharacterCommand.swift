// `troupe character …`: the character store from the command line; every studio action on a
// character is one of these, so it can be scripted.

import ArgumentParser
import Foundation
import Pipeline

struct CharacterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "character", abstract: "Create, list, show, accept images into, rename and delete characters.",
        subcommands: [CharacterNew.self, CharacterList.self, CharacterShow.self, CharacterAccept.self, CharacterReject.self,
                      CharacterRename.self, CharacterDelete.self])
}

/// Options every store command shares.
struct StoreOptions: ParsableArguments {
    @Flag(help: "If another process holds the character, wait for it instead of failing.")
    var wait = false

    var store: CharacterStore { CharacterStore(wait: wait) }
}

extension StoreError {
    var studio: StudioError { isUserError ? .badInput(description) : .failed(description) }
}

@discardableResult
func storeCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as StoreError { throw e.studio } catch { throw StudioError.wrap(error) }
}

func recordJSON(_ r: CharacterRecord, folder: String) -> [String: Any] {
    let data = (try? CharacterRecord.encoder().encode(r)) ?? Data()
    var obj = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
    obj["folder"] = folder
    return obj
}

struct CharacterNew: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "new", abstract: "Create a character from one prompt.")
    @Argument(help: "Name (spaces and Unicode allowed; no '/'; at most 64 characters).") var name: String
    @Option(help: "The character's prompt, e.g. \"a knight with red hair\".") var prompt: String
    @Option(name: .customLong("base-word"), help: "The prompt's word that stands for the character (OneActor offsets it), e.g. knight.") var baseWord: String
    @Option(help: "Seed of the target generation.") var seed: UInt64 = 1
    @Option(help: "Model folder (default: the embedded troupe-mini).") var model: String?
    @Flag(help: "Print one JSON object on stdout.") var json = false
    @OptionGroup var options: StoreOptions

    func run() throws {
        let store = options.store
        let r = try storeCall { try store.create(name, prompt: prompt, baseWord: baseWord, seed: seed, model: model ?? ModelLocator.defaultModelName) }
        if json { try printJSON(recordJSON(r, folder: store.folder(r.name))) } else { print("created \(r.name) in \(store.folder(r.name))") }
    }
}

struct CharacterList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List characters (broken ones are named with the reason; exit 1 if any).")
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        let listing = CharacterStore().list()
        if json {
            try printJSON(["characters": listing.records.map(\.name),
                           "errors": listing.errors.map { ["name": $0.name, "file": $0.file, "reason": $0.reason] }] as [String: Any])
        } else {
            for r in listing.records {
                print("\(r.name)\t\(r.references.count) refs\t\(r.runs.count) runs\t\(r.prompt)")
            }
            if listing.records.isEmpty && listing.errors.isEmpty { print("no characters yet (create one: troupe character new NAME --prompt P --base-word W)") }
            for e in listing.errors { FileHandle.standardError.write(Data("troupe: \(e.reason)\n".utf8)) }
        }
        if !listing.errors.isEmpty { throw StudioError.failed("\(listing.errors.count) character file(s) could not be read") }
    }
}

struct CharacterShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one character.")
    @Argument var name: String
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        let store = CharacterStore()
        let r = try storeCall { try store.load(name) }
        let tunings = CharacterArtifacts(folder: store.folder(r.name)).tunings
        if json {
            var obj = recordJSON(r, folder: store.folder(r.name))
            obj["tunings"] = tunings
            try printJSON(obj); return
        }
        print("\(r.name)\n  prompt     \(r.prompt)\n  base word  \(r.baseWord)\n  seed       \(r.seed)\n  model      \(r.model)")
        print("  tuned      " + (tunings.isEmpty ? "not yet" : tunings.map(CharacterArtifacts.displayName).joined(separator: ", ")))
        print("  target     \(r.target ?? "none")\n  references \(r.references.count)\(r.references.map { "\n    " + $0.file }.joined())")
        print("  rejected   \(r.rejected.count)\n  runs       \(r.runs.count)\(r.runs.map { "\n    \($0.id) \($0.kind) \($0.status)" }.joined())")
        print("  folder     \(store.folder(r.name))")
    }
}

/// A character and PNGs to add to it (accept and reject).
struct ImageArguments: ParsableArguments {
    @Argument var name: String
    @Argument(help: "PNG files.") var images: [String]
    @OptionGroup var options: StoreOptions

    func add(accepted: Bool) throws {
        let r = try storeCall { try options.store.add(name, images: images, accepted: accepted) }
        print(accepted ? "\(r.name): \(r.references.count) references" : "\(r.name): \(r.rejected.count) rejected")
    }
}

struct CharacterAccept: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "accept", abstract: "Add PNGs to the character's accepted references.")
    @OptionGroup var arguments: ImageArguments
    func run() throws { try arguments.add(accepted: true) }
}

struct CharacterReject: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reject", abstract: "Record PNGs as rejected (kept apart, never trained on).")
    @OptionGroup var arguments: ImageArguments
    func run() throws { try arguments.add(accepted: false) }
}

struct CharacterRename: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rename", abstract: "Rename a character.")
    @Argument var name: String
    @Argument var newName: String
    @OptionGroup var options: StoreOptions

    func run() throws {
        let r = try storeCall { try options.store.rename(name, to: newName) }
        print("renamed to \(r.name)")
    }
}

struct CharacterDelete: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "delete", abstract: "Move a character to the store's trash (or remove it with --purge).")
    @Argument var name: String
    @Flag(help: "Delete for good instead of moving to trash.") var purge = false
    @OptionGroup var options: StoreOptions

    func run() throws {
        let dest = try storeCall { try options.store.delete(name, purge: purge) }
        print(dest.map { "moved to \($0)" } ?? "deleted \(name)")
    }
}
