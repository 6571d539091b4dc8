// `troupe grid --character NAME --v 0,0.25,0.5,0.75,1 [--prompts FILE] -o OUT.png`: the
// character × prompts sweep as one labelled PNG — rows are prompts, columns v values (OneActor's
// interpolation from the base model at 0 through the character at 1 and beyond). Each prompt
// keeps one seed across the row, so a column change is the interpolation alone.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct GridCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "grid", abstract: "A consistency grid of a character: prompts × interpolation weights.")

    @Option(help: "Character name (needs `troupe tune oneactor NAME` first).")
    var character: String
    @Option(name: .customLong("v"), help: "Comma-separated interpolation weights, one column each.")
    var vs = "0,0.25,0.5,0.75,1"
    @Option(help: "Prompt templates, one per line, `{}` where the character's prompt goes (default: the built-in evaluation prompts).")
    var prompts: String?
    @Option(help: "Seed of the first row (row k uses seed + k).")
    var seed: UInt64 = 1
    @Option(help: "Cluster guidance's auxiliary exclusion η2.")
    var eta2: Float?
    @Option(name: .shortAndLong, help: "Output PNG.")
    var output: String
    @OptionGroup var storeOptions: StoreOptions

    func run() throws {
        let weights = try NumberList.parse(vs, flag: "--v")
        let templates: [String]
        if let prompts {
            guard let text = try? String(contentsOfFile: prompts, encoding: .utf8) else { throw StudioError.badInput("\(prompts): cannot read the prompts file") }
            templates = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard !templates.isEmpty, templates.count <= 32, templates.allSatisfy({ $0.contains("{}") }) else {
                throw StudioError.badInput("\(prompts): 1…32 prompt lines, each with {} where the character goes")
            }
        } else { templates = EvalProtocol.prompts }
        let record = try storeCall { try storeOptions.store.load(character) }
        let (pipe, _) = try ModelLocator.loadPipeline(record.model == ModelLocator.defaultModelName ? nil : record.model)
        let tuning = try CharacterTuning.load(storeOptions.store, name: record.name, pipeline: pipe)
        let interrupt = InterruptFlag.install()
        let progress = ProgressLine(label: "grid \(record.name)", quiet: false)
        var rows: [[RGBImage?]] = []
        for (k, t) in templates.enumerated() {
            var r = pipe.request(prompt: t.replacingOccurrences(of: "{}", with: record.prompt))
            r.seed = seed &+ UInt64(k); r.negativePrompt = record.negativePrompt
            var row: [RGBImage?] = []
            for (j, v) in weights.enumerated() {
                if interrupt.isSet { throw StudioError.cancelled("grid interrupted") }
                r.characterControls = CharacterControls(v: v, eta2: eta2)
                let (cond, guidance, _) = try tuning.prepare(try pipe.validate(r).request, pipeline: pipe)
                let out: GenerationResult
                do { out = try pipe.generate(r, conditioning: cond, guidance: guidance) } catch { throw StudioError.wrap(error) }
                row.append(RGBImage(width: out.width, height: out.height, pixels: out.images[0]))
                progress.update(step: k * weights.count + j + 1, total: templates.count * weights.count)
            }
            rows.append(row)
        }
        progress.finish()
        let scores = columnScores(rows, templates: templates)
        let labels = weights.enumerated().map { j, v in
            "v " + GenerationPNG.text(v) + (scores[j].map { String(format: "\nIC %.2f PF %.2f", $0.identityConsistency, $0.promptFidelity) } ?? "")
        }
        let grid = Grid(cells: rows, rowLabels: templates.indices.map { "prompt \($0 + 1)" }, columnLabels: labels)
        let enlarge = max(1, 128 / max(1, rows.first?.first??.width ?? 128))
        do { try PNGCodec.write(grid.compose(enlarge: enlarge), to: output) } catch { throw StudioError.wrap(error) }
        for (j, sc) in scores.enumerated() {
            if let sc { FileHandle.standardError.write(Data(String(format: "v %@: identity consistency %.3f, prompt fidelity %.3f\n", GenerationPNG.text(weights[j]), sc.identityConsistency, sc.promptFidelity).utf8)) }
        }
        for (k, t) in templates.enumerated() { FileHandle.standardError.write(Data("prompt \(k + 1): \(t.replacingOccurrences(of: "{}", with: record.prompt))\n".utf8)) }
        print(output)
    }
}

extension GridCommand {
    /// The evaluation judge's scores of each column (identity consistency across its prompts,
    /// prompt fidelity), where the judge can read the images: troupe-mini's 64×64 World sprites
    /// with the judge shipped beside it. nil where it cannot.
    func columnScores(_ rows: [[RGBImage?]], templates: [String]) -> [MethodScores?] {
        let columns = rows.first?.count ?? 0
        guard let path = ModelLocator.locate(ModelLocator.evaluationJudgeFile), let judge = try? ModelLocator.loadJudge(path),
              rows.allSatisfy({ $0.allSatisfy { $0?.width == 64 && $0?.height == 64 } }),
              let prompts = try? templates.map(EvalPrompt.init(template:)) else { return Array(repeating: nil, count: columns) }
        let evaluator = ConsistencyEvaluator(judge: judge)
        return (0..<columns).map { j in
            evaluator.score(rows.indices.map { k in ConsistencyEvaluator.Sample(character: 0, prompt: prompts[k], pixels: rows[k][j]!.pixels) })
        }
    }
}
