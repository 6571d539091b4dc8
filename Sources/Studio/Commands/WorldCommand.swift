// `troupe world export --count N --out DIR [--seed S]`: World samples as PNGs plus
// labels.jsonl (every attribute, the caption, the identity id), for outside evaluation.

import ArgumentParser
import Foundation
import Pipeline
import Preview

struct WorldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "world", abstract: "The procedural character World.",
                                                    subcommands: [WorldExport.self])
}

struct WorldExport: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write World samples as PNGs and labels.jsonl.")

    @Option(help: "Number of samples.")
    var count: Int
    @Option(help: "Output directory (created if missing).")
    var out: String
    @Option(help: "World seed.")
    var seed: UInt64 = 0

    func validate() throws {
        guard count >= 1, count <= 1_000_000 else { throw ValidationError("--count must be in 1…1000000") }
    }

    func run() throws {
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw StudioError.badInput("cannot create \(out): \(error.localizedDescription)")
        }
        let world = World(seed: seed)
        var lines: [String] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let progress = ProgressLine(label: "world export", quiet: false)
        for i in 0..<count {
            let s = world.sample(i)
            let name = String(format: "%06d.png", i)
            let img = RGBImage(width: World.imageSize, height: World.imageSize, pixels: world.image(s))
            do { try PNGCodec.write(img, to: out + "/" + name, text: [("caption", s.caption)]) } catch { throw StudioError.wrap(error) }
            var obj = try JSONSerialization.jsonObject(with: encoder.encode(WorldLabel(sample: s, file: name))) as! [String: Any]
            obj["identity_id"] = s.identity.id
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
            if i % 50 == 0 || i == count - 1 { progress.update(step: i + 1, total: count) }
        }
        progress.finish()
        do { try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: out + "/labels.jsonl") } catch {
            throw StudioError.wrap(error)
        }
        print(out + "/labels.jsonl")
    }
}

/// One labels.jsonl line: attribute words, not enum numbers, so other tools can read it.
struct WorldLabel: Encodable {
    let file: String, caption: String, index: Int
    let characterClass: String, skin: String, hairColor: String, hairStyle: String, eyeColor: String
    let outfitColor: String, outfitPattern: String, accessory: String
    let pose: String, expression: String, background: String, view: String
    let namedAttributes: [String]

    init(sample s: WorldSample, file: String) {
        self.file = file; caption = s.caption; index = s.index
        let i = s.identity, c = s.scene
        characterClass = i.characterClass.word; skin = i.skin.word; hairColor = i.hairColor.word; hairStyle = i.hairStyle.word
        eyeColor = i.eyeColor.word; outfitColor = i.outfitColor.word; outfitPattern = i.outfitPattern.word; accessory = i.accessory.word
        pose = "\(c.pose)"; expression = "\(c.expression)"; background = "\(c.background)"; view = "\(c.view)"
        namedAttributes = s.namedAttributes
    }

    enum CodingKeys: String, CodingKey {
        case file, caption, index, skin, accessory, pose, expression, background, view
        case characterClass = "class", hairColor = "hair_color", hairStyle = "hair_style", eyeColor = "eye_color"
        case outfitColor = "outfit_color", outfitPattern = "outfit_pattern", namedAttributes = "named_attributes"
    }
}
