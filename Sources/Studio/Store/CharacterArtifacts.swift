// Where a character's tuning results live in its folder (design §6), and which of them it has.

import Foundation

struct CharacterArtifacts {
    let folder: String
    var projector: String { folder + "/oneactor/projector.safetensors" }
    var hasOneActor: Bool { FileManager.default.fileExists(atPath: projector) }
    func lora(stage: Int) -> String { folder + "/lora/stage\(stage).safetensors" }
    /// The latest stage's LoRA (stage 3, else 2, else 1), if any.
    var latestLoRA: String? { [3, 2, 1].map(lora(stage:)).first { FileManager.default.fileExists(atPath: $0) } }
    /// The tunings it has, by the names `tune` and `grid --methods` use: oneactor, stage1…3.
    var tunings: [String] {
        (hasOneActor ? ["oneactor"] : []) + (1...3).filter { FileManager.default.fileExists(atPath: lora(stage: $0)) }.map { "stage\($0)" }
    }
    /// "OneActor", "stage 1"… for a tuning's name, as the studio and `character show` write it.
    static func displayName(_ tuning: String) -> String {
        tuning == "oneactor" ? "OneActor" : tuning.replacingOccurrences(of: "stage", with: "stage ")
    }
}
