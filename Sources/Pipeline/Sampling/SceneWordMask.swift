// Scene-word masking: a character's prompt inside a longer one ("a bald wizard with a
// necklace, walking under a blue sky, smiling"), read by every cross-attention layer through
// its own tokens and the end/padding tokens only — the causal text encoder has already read the
// scene words into the end token and the padding after it, which stay, so the scene, pose,
// expression and view are still followed. Built to test whether the scene words' own tokens are
// what recolours a tuned character (the teal robot turned blue "under a blue sky"); on
// troupe-mini they are not the only path (docs/stages.md: no change), so it is `eval
// --mask-scene-words`'s measuring tool, off everywhere. Implemented as diffusers'
// `encoder_attention_mask` (0 at the skipped tokens; Conditioning.maskedPositions →
// AttentionKeyMask).

public enum SceneWordMask {
    /// The token positions to skip in `encode(prompt)`: every word token (between the start
    /// token and the first end token) outside the first occurrence of `characterPrompt`'s
    /// tokens, in order. Nil when the prompt does not contain the character's prompt as whole
    /// tokens within the window (nothing then tells the character's words from the scene's);
    /// empty when the prompt is the character's prompt alone.
    public static func positions(prompt: String, characterPrompt: String, tokenizer: CLIPTokenizer) -> [Int]? {
        // The tokenizer's own search (the base word's): every occurrence's positions, in order.
        guard let found = try? tokenizer.positions(of: characterPrompt, in: prompt) else { return nil }
        let span = Set(found.prefix(tokenizer.tokenIDs(characterPrompt).count))
        let words = tokenizer.encode(prompt).prefix { $0 != tokenizer.eosID }.count   // start token + words
        return (1..<words).filter { !span.contains($0) }
    }
}

extension Conditioning {
    /// Every prompt branch (not the unconditional one, which names no scene) skipping `positions`.
    public func maskingSceneWords(_ positions: [Int]) -> Conditioning {
        var c = self
        for b in c.branches.keys where b != .unconditional { c.branches[b]!.maskedPositions = positions }
        return c
    }
}
