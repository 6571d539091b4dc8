// character.json: one character project (design §6). `schema_version` guards the format:
// a newer version is refused (never overwritten); older versions are migrated on load, and the
// store keeps a backup of the file it migrated.
//   v0 (pre-release): no schema_version; `accepted` was a list of file names under refs/.
//   v1: references/rejected as entries with their source; settings; runs.

import Foundation
import Pipeline

struct CharacterRecord: Codable, Equatable {
    static let schemaVersion = 1

    struct ImageEntry: Codable, Equatable {
        /// Path inside the character folder ("refs/0003-knight.png").
        var file: String
        /// Where the image came from when it was added.
        var source: String?
        var added: Date
    }

    struct Settings: Codable, Equatable {
        /// OneActor's interpolation weight.
        var v: Float = OneActorAdapter.defaultV
        /// Cluster guidance's target scale; nil: the model's guidance scale (OneActor's η1 is
        /// the classifier-free scale of the target branch).
        var eta1: Float? = nil
        var eta2: Float = 0
        /// Cluster guidance only where the subject is; nil: the model's recommendation
        /// (SamplingDefaults.oneActorSubjectMask).
        var subjectMask: Bool? = nil
        /// nil: the model's recommendation (SamplingDefaults).
        var cfg: Float? = nil
        var steps: Int = 25

        /// The guidance to sample this character at: its own, else the model's (through its
        /// stage LoRA when `characterLoRA`).
        func guidanceScale(defaults: SamplingDefaults, characterLoRA: Bool) -> Float {
            cfg ?? defaults.guidanceScale(characterLoRA: characterLoRA)
        }
    }

    struct Run: Codable, Equatable {
        var id: String
        var kind: String
        var status: String
        var created: Date
        /// Which tuning of a soup (`tune stages --soup K`) this stage run belongs to, and K; nil:
        /// the character's one tuning.
        var member: Int? = nil
        var soup: Int? = nil
    }

    var schemaVersion = CharacterRecord.schemaVersion
    var name: String
    var prompt: String
    var baseWord: String
    var negativePrompt: String = ""
    var seed: UInt64
    var model: String
    var created: Date
    var target: String?
    var references: [ImageEntry] = []
    var rejected: [ImageEntry] = []
    var settings = Settings()
    var runs: [Run] = []

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version", name, prompt, baseWord = "base_word", negativePrompt = "negative_prompt"
        case seed, model, created, target, references, rejected, settings, runs
    }

    init(name: String, prompt: String, baseWord: String, seed: UInt64, model: String, created: Date = Date()) {
        self.name = name; self.prompt = prompt; self.baseWord = baseWord; self.seed = seed; self.model = model; self.created = created
    }

    /// Fields with defaults may be absent (files written before they existed).
    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        schemaVersion = try c.decode(Int.self, forKey: .schemaVersion)
        name = try c.decode(String.self, forKey: .name)
        prompt = try c.decode(String.self, forKey: .prompt)
        baseWord = try c.decode(String.self, forKey: .baseWord)
        negativePrompt = try c.decodeIfPresent(String.self, forKey: .negativePrompt) ?? ""
        seed = try c.decode(UInt64.self, forKey: .seed)
        model = try c.decode(String.self, forKey: .model)
        created = try c.decode(Date.self, forKey: .created)
        target = try c.decodeIfPresent(String.self, forKey: .target)
        references = try c.decodeIfPresent([ImageEntry].self, forKey: .references) ?? []
        rejected = try c.decodeIfPresent([ImageEntry].self, forKey: .rejected) ?? []
        settings = try c.decodeIfPresent(Settings.self, forKey: .settings) ?? Settings()
        runs = try c.decodeIfPresent([Run].self, forKey: .runs) ?? []
    }

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }

    /// Decodes any supported version; `migratedFrom` is the older version it was upgraded from.
    static func decode(_ data: Data, file: String) throws -> (CharacterRecord, migratedFrom: Int?) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw StoreError.corrupt(file: file, reason: "not valid JSON (\(ConfigDecoding.jsonReason(error)))")
        }
        guard var dict = object as? [String: Any] else { throw StoreError.corrupt(file: file, reason: "not a JSON object") }
        let version: Int
        if let v = dict["schema_version"] {
            guard let n = v as? Int else { throw StoreError.corrupt(file: file, reason: "schema_version is not an integer") }
            version = n
        } else { version = 0 }
        if version > schemaVersion { throw StoreError.newerSchema(file: file, found: version, supported: schemaVersion) }
        if version < 0 { throw StoreError.corrupt(file: file, reason: "schema_version \(version)") }
        if version == 0 {
            // v0 → v1: accepted file names become reference entries.
            let accepted = dict.removeValue(forKey: "accepted") as? [String] ?? []
            let created = dict["created"] as? String ?? ISO8601DateFormatter().string(from: Date())
            dict["references"] = accepted.map { ["file": "refs/" + $0, "added": created] }
            dict["created"] = created
            dict["schema_version"] = 1
        }
        let upgraded = try JSONSerialization.data(withJSONObject: dict)
        do {
            return (try decoder().decode(CharacterRecord.self, from: upgraded), version < schemaVersion ? version : nil)
        } catch let e as DecodingError {
            throw StoreError.corrupt(file: file, reason: ConfigDecoding.describe(e, data: upgraded))
        }
    }

}
