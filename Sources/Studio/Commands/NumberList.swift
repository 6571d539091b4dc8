// Comma-separated number options (`grid --v 0,0.5,1`, `eval --cfg 3,4.5`,
// `eval --stage-lora-scale 1,1.2`): one parser, so every sweep flag refuses the same inputs
// with the same message.

enum NumberList {
    /// The values of `text` for `flag`: 1…`maxCount` finite numbers of size at most 100.
    static func parse(_ text: String, flag: String, maxCount: Int = 16) throws -> [Float] {
        let values = try text.split(separator: ",", omittingEmptySubsequences: false).map { s -> Float in
            guard let v = Float(s.trimmingCharacters(in: .whitespaces)), v.isFinite, abs(v) <= 100 else {
                throw StudioError.badInput("\(flag) takes comma-separated finite numbers (at most 100 in size), got '\(s)'")
            }
            return v
        }
        guard (1...maxCount).contains(values.count) else { throw StudioError.badInput("\(flag) takes 1…\(maxCount) values") }
        return values
    }
}
