// `troupe tokenize [--model DIR] TEXT`: the CLIP token ids the model's tokenizer gives.

import ArgumentParser
import Pipeline

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of TEXT, one line, space separated.")

    @Option(help: "Diffusers model folder whose tokenizer to use (default: the embedded model).")
    var model: String?

    @Flag(help: "Pad and truncate to 77 ids with start and end tokens, as the text encoder sees them.")
    var padded = false

    @Argument(help: "The text to tokenize.")
    var text: String

    func run() throws {
        let (path, _) = try ModelLocator.resolve(model)
        let tokenizer: CLIPTokenizer
        do {
            let folder = try DiffusersFolder(path: path)
            tokenizer = try folder.tokenizer()
        } catch { throw StudioError.wrap(error) }
        let ids = padded ? tokenizer.encode(text) : [tokenizer.bosID] + tokenizer.tokenIDs(text) + [tokenizer.eosID]
        print(ids.map(String.init).joined(separator: " "))
    }
}
