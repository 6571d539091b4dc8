// What the studio's character sliders and the CLI's character flags set on a GenerationRequest:
// OneActor's interpolation weight v, cluster guidance's η1 and η2, the steps it applies on, and
// whether it applies only where the subject is (ClusterGuidance's subject mask).
// nil takes the character's setting, then the model's default (CharacterTuning resolves them).

public struct CharacterControls: Sendable, Equatable {
    public var v: Float?
    public var eta1: Float?
    public var eta2: Float?
    /// Steps (1-based, inclusive, as `--guidance-steps A:B`) that use cluster guidance; nil: all.
    public var guidanceSteps: ClosedRange<Int>?
    public var subjectMask: Bool?

    public init(v: Float? = nil, eta1: Float? = nil, eta2: Float? = nil, guidanceSteps: ClosedRange<Int>? = nil, subjectMask: Bool? = nil) {
        self.v = v; self.eta1 = eta1; self.eta2 = eta2; self.guidanceSteps = guidanceSteps; self.subjectMask = subjectMask
    }

    /// The 0-based steps of a `steps`-step run that use cluster guidance.
    public func guidanceRange(steps: Int) -> Range<Int> {
        guard let g = guidanceSteps else { return 0..<steps }
        return min(g.lowerBound - 1, steps)..<min(g.upperBound, steps)
    }

    /// "A:B" → A…B (1 ≤ A ≤ B ≤ 1000); nil when the text is not that.
    public static func parseSteps(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 1, a <= b, b <= 1000 else { return nil }
        return a...b
    }
}
