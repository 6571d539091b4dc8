// `troupe grid --character NAME… [--methods LIST | --v LIST] [--prompts FILE] [--seeds K] -o OUT.png`:
// consistency grids as one labelled PNG — rows are prompts (× seeds, grouped by character),
// columns either methods side by side (GridMethod: `prompt`, each tuning, combinations, `all`)
// or OneActor's interpolation weight v from the base model at 0 through the character at 1 and
// beyond (the default). A row keeps one seed across its columns, so a column change is the
// method (or v) alone; every character gets the same seeds. Under each column label, where the
// evaluation judge can read the images, its identity consistency and prompt fidelity.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct GridCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "grid", abstract: "A consistency grid: a character's prompts × methods (or OneActor's interpolation weights).")

    @Option(name: .customLong("character"), help: "Character name; repeat for several characters (their rows one after another).")
    var characters: [String] = []
    @Option(help: "Comma-separated methods, one column each: \(GridMethod.names) (`all`: the base model, each tuning the characters have, and all of them together).")
    var methods: String?
    @Option(name: .customLong("v"), help: "Comma-separated OneActor interpolation weights, one column each (the default grid: 0,0.25,0.5,0.75,1).")
    var vs: String?
    @Option(help: "Prompt templates, one per line, `{}` where the character's prompt goes (default: the built-in evaluation prompts).")
    var prompts: String?
    @Option(help: "Images per prompt, one row each (seeds follow on).")
    var seeds = 1
    @Option(help: "Sampling steps (default: the model's troupe.json, else 25).")
    var steps: Int?
    @Option(help: "Seed of the first row (each further row of a character: the next seed).")
    var seed: UInt64 = 1
    @Option(help: "Cluster guidance's auxiliary exclusion η2, for columns with OneActor.")
    var eta2: Float?
    @Option(name: .shortAndLong, help: "Output PNG.")
    var output: String
    @OptionGroup var storeOptions: StoreOptions

    static let defaultWeights = "0,0.25,0.5,0.75,1"
    static let maxRows = 64

    func templates() throws -> [String] {
        guard let prompts else { return EvalProtocol.prompts }
        guard let text = try? String(contentsOfFile: prompts, encoding: .utf8) else { throw StudioError.badInput("\(prompts): cannot read the prompts file") }
        let templates = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !templates.isEmpty, templates.count <= 32, templates.allSatisfy({ $0.contains("{}") }) else {
            throw StudioError.badInput("\(prompts): 1…32 prompt lines, each with {} where the character goes")
        }
        return templates
    }

    func run() throws {
        guard !characters.isEmpty else { throw StudioError.badInput("--character NAME is required (repeat it for several characters)") }
        guard Set(characters).count == characters.count, characters.count <= 8 else { throw StudioError.badInput("--character: 1…8 different characters") }
        guard methods == nil || vs == nil else { throw StudioError.badInput("--methods and --v make two kinds of grid; give one of them") }
        guard (1...8).contains(seeds) else { throw StudioError.badInput("--seeds must be in 1…8, got \(seeds)") }
        // nil: `--methods all`, resolved once the characters are loaded.
        var columns: [GridMethod]?
        if let methods { columns = try GridMethod.parse(methods) } else {
            columns = try NumberList.parse(vs ?? GridCommand.defaultWeights, flag: "--v").map { GridMethod(oneActor: true, v: $0) }
        }
        let templates = try templates()
        guard characters.count * templates.count * seeds <= GridCommand.maxRows else {
            throw StudioError.badInput("\(characters.count) characters × \(templates.count) prompts × \(seeds) seeds is more than \(GridCommand.maxRows) rows; use fewer")
        }
        // Every character and its model, its requests (validated by its pipeline: steps and
        // sizes are bounded there), then every column checked for every character, before
        // anything is drawn: bad input or a missing tuning is a clear error, not a half-made grid.
        var models: [String: StableDiffusionPipeline] = [:]
        let people = try characters.map { name -> GridCharacter in
            let record = try storeCall { try storeOptions.store.load(name) }
            let ref = record.model == ModelLocator.defaultModelName ? nil : record.model
            let pipeline = try models[ref ?? ""] ?? ModelLocator.loadPipeline(ref).0
            models[ref ?? ""] = pipeline
            return GridCharacter(record: record, pipeline: pipeline, store: storeOptions.store)
        }
        let perCharacter = templates.count * seeds
        let requests = try people.map { person in
            try (0..<perCharacter).map { row -> GenerationRequest in
                var r = person.pipeline.request(prompt: templates[row / seeds].replacingOccurrences(of: "{}", with: person.record.prompt))
                r.seed = seed &+ UInt64(row); r.negativePrompt = person.record.negativePrompt
                if let steps { r.steps = steps }
                do { _ = try person.pipeline.validate(r) } catch { throw StudioError.wrap(error) }
                return r
            }
        }
        if columns == nil {
            columns = GridMethod.all(oneActor: people.allSatisfy(\.hasOneActor), stages: people.allSatisfy(\.hasStages),
                                     identity: people.allSatisfy(\.hasIdentity))
        }
        let methodColumns = columns!
        for p in people { for m in methodColumns { try p.check(m) } }

        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "grid", quiet: false)
        let total = people.count * perCharacter * methodColumns.count
        var cells = Array(repeating: [RGBImage?](repeating: nil, count: methodColumns.count), count: people.count * perCharacter)
        var done = 0
        for (c, person) in people.enumerated() {
            for (j, m) in methodColumns.enumerated() {
                let images = try person.draw(m, requests[c], eta2: eta2) {
                    done += 1; progress.update(step: done, total: total)
                    return !interrupt.isSet
                }
                for (row, image) in images.enumerated() { cells[c * perCharacter + row][j] = image }
            }
        }
        progress.finish()
        let scores = columnScores(cells, characters: people.count, templates: templates, seeds: seeds)
        let labels = methodColumns.enumerated().map { j, m in
            m.label.replacingOccurrences(of: "+", with: "+\n") + (scores[j].map { String(format: "\nIC %.2f PF %.2f", $0.identityConsistency, $0.promptFidelity) } ?? "")
        }
        let rowLabels = people.flatMap { p in (0..<perCharacter).map { row in
            (people.count > 1 ? p.record.name + " " : "") + "prompt \(row / seeds + 1)" + (seeds > 1 ? " #\(row % seeds + 1)" : "")
        } }
        let grid = Grid(cells: cells, rowLabels: rowLabels, columnLabels: labels)
        let enlarge = max(1, 128 / max(1, cells.first?.first??.width ?? 128))
        do { try PNGCodec.write(grid.compose(enlarge: enlarge), to: output) } catch { throw StudioError.wrap(error) }
        for (j, sc) in scores.enumerated() {
            if let sc { FileHandle.standardError.write(Data(String(format: "%@: identity consistency %.3f, prompt fidelity %.3f\n", methodColumns[j].label, sc.identityConsistency, sc.promptFidelity).utf8)) }
        }
        for (k, t) in templates.enumerated() { FileHandle.standardError.write(Data("prompt \(k + 1): \(t)\n".utf8)) }
        print(output)
    }
}

extension GridCommand {
    /// The evaluation judge's scores of each column (identity consistency within each character
    /// across its prompts and seeds, prompt fidelity), where the judge can read the images:
    /// troupe-mini's 64×64 World sprites with the judge shipped beside it. nil where it cannot.
    func columnScores(_ cells: [[RGBImage?]], characters: Int, templates: [String], seeds: Int) -> [MethodScores?] {
        let columns = cells.first?.count ?? 0, perCharacter = templates.count * seeds
        guard let path = ModelLocator.locate(ModelLocator.evaluationJudgeFile), let judge = try? ModelLocator.loadJudge(path),
              cells.allSatisfy({ $0.allSatisfy { $0?.width == 64 && $0?.height == 64 } }),
              let prompts = try? templates.map(EvalPrompt.init(template:)) else { return Array(repeating: nil, count: columns) }
        let evaluator = ConsistencyEvaluator(judge: judge)
        return (0..<columns).map { j in
            evaluator.score(cells.indices.map { row in
                ConsistencyEvaluator.Sample(character: row / perCharacter, prompt: prompts[(row % perCharacter) / seeds], pixels: cells[row][j]!.pixels)
            })
        }
    }
}
