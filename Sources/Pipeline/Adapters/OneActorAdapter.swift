// OneActor at sampling time (arXiv 2404.10267 §3.3; design §3): a trained projector and the
// character's cluster data give δ_target = Projector(h_target) and the mean auxiliary offset
// δ_aux = mean_i Projector(h_i). Attached to a request's Conditioning, the prompt's base word
// gets v·δ_target (v: the interpolation weight; 0 is the base model), an `.auxiliary`
// branch carries δ_aux for cluster guidance's exclusion term, and a `.plain` branch the prompt
// without either, for the steps outside cluster guidance's range.

import Foundation

public struct OneActorAdapter {
    /// The interpolation weight v when nothing sets it (the public code's configs use 0.8).
    public static let defaultV: Float = 0.8

    public let targetOffset: Tensor     // [1, d]
    public let auxiliaryOffset: Tensor  // [1, d]
    public let baseWord: String
    public let site: OffsetSite

    public init(projector: Projector, cluster: OneActorCluster, site: OffsetSite = .output) {
        self.site = site
        let (t, a) = GradMode.noGrad { () -> (Tensor, Tensor) in
            let all = projector(cluster.features)
            let n = all.shape[0]
            return (all.sliced(0, 0..<1).contiguous(), all.sliced(0, 1..<n).mean(axes: [0], keepDim: true).contiguous())
        }
        targetOffset = t; auxiliaryOffset = a; baseWord = cluster.baseWord
    }

    init(targetOffset: Tensor, auxiliaryOffset: Tensor, baseWord: String, site: OffsetSite) {
        self.targetOffset = targetOffset; self.auxiliaryOffset = auxiliaryOffset; self.baseWord = baseWord; self.site = site
    }

    /// Several tunings of one character (one cluster, projectors from other seeds) as one: the
    /// mean of their offsets — what LoRASoup is for the stages' adapters, here on the outputs,
    /// since projectors from different initialisations share no weight space — and
    /// norm-matched, each mean rescaled to its members' mean norm (averaging directions that only
    /// partly agree shortens them).
    public static func soup(of members: [OneActorAdapter], normMatched: Bool) -> OneActorAdapter {
        precondition(!members.isEmpty && members.allSatisfy { $0.baseWord == members[0].baseWord && $0.site == members[0].site },
                     "a soup's tunings must be of one character, at one site")
        func mean(_ offsets: [Tensor]) -> Tensor {
            let m = offsets.dropFirst().reduce(offsets[0]) { $0 + $1 } * (1 / Float(offsets.count))
            guard normMatched else { return m.contiguous() }
            let norm = { (t: Tensor) in t.square().sum().item().squareRoot() }
            let target = offsets.map(norm).reduce(0, +) / Float(offsets.count), n = norm(m)
            return (n > 0 ? m * (target / n) : m).contiguous()
        }
        return OneActorAdapter(targetOffset: mean(members.map(\.targetOffset)), auxiliaryOffset: mean(members.map(\.auxiliaryOffset)),
                               baseWord: members[0].baseWord, site: members[0].site)
    }

    /// Loads `projector.safetensors` for the model loaded now (and where its δ goes).
    public static func loadProjector(path: String, model: String) throws -> (Projector, OffsetSite) {
        let f = try SafetensorsFile(path: path)
        guard f.metadata["troupe"] == "oneactor-projector" else { throw OneActorError.corrupt(path, "not a OneActor projector") }
        let made = f.metadata["model"] ?? "?"
        guard made == model else { throw OneActorError.otherModel(path: path, made: made, now: model) }
        guard let c = Int(f.metadata["in_channels"] ?? ""), let s = Int(f.metadata["in_size"] ?? ""), let d = Int(f.metadata["out_dim"] ?? "") else {
            throw OneActorError.corrupt(path, "metadata lacks in_channels, in_size or out_dim")
        }
        guard let site = OffsetSite(rawValue: f.metadata["offset_site"] ?? "output") else {
            throw OneActorError.corrupt(path, "its offset site '\(f.metadata["offset_site"] ?? "")' is not one this troupe knows (\(OffsetSite.choices))")
        }
        return (try Projector(config: ProjectorConfig(inChannels: c, inSize: s, outDim: d), weights: WeightReader(files: [f])), site)
    }

    /// The request's conditioning with this character: v·δ_target at the prompt's base word
    /// and the auxiliary branch (δ_aux) added — at the encoder's output, or (input site) on the
    /// base word's token embedding, re-encoding the prompt. With the character's own prompt
    /// (`subjectlessOf`), also the prompt without the character (ClusterGuidance's subject mask;
    /// `subjectlessIDs`).
    public func conditioning(for request: GenerationRequest, pipeline: StableDiffusionPipeline, v: Float,
                             subjectlessOf characterPrompt: String? = nil) throws -> Conditioning {
        var out = try offsetConditioning(for: request, pipeline: pipeline, v: v)
        guard let characterPrompt else { return out }
        let ids = try subjectlessIDs(prompt: request.prompt, characterPrompt: characterPrompt, tokenizer: pipeline.tokenizer)
        let c = GradMode.noGrad { pipeline.textEncoder([ids], clipSkip: request.clipSkip) }
        out.branches[.subjectless] = TextConditioning(context: c.expanded([request.count, c.shape[1], c.shape[2]]).contiguous())
        return out
    }

    /// The token ids of `prompt` without its subject: without the character's own prompt ("a
    /// ninja with white hair") where `prompt` contains it, else without the base word. DiffEdit's reference text describes the
    /// image without the object; taking out the whole character phrase leaves the scene, pose and
    /// expression words, so the mask covers the character's every part — with the base word
    /// alone taken out, the words that stay ("with white hair", "in a teal outfit") still draw
    /// those parts and the mask misses them.
    public func subjectlessIDs(prompt: String, characterPrompt: String, tokenizer: CLIPTokenizer) throws -> [Int] {
        if !characterPrompt.isEmpty, let r = prompt.range(of: characterPrompt, options: [.caseInsensitive]) {
            var rest = prompt
            rest.removeSubrange(r)
            return tokenizer.encode(rest)
        }
        return try tokenizer.encode(prompt, removing: baseWord)
    }

    func offsetConditioning(for request: GenerationRequest, pipeline: StableDiffusionPipeline, v: Float) throws -> Conditioning {
        // The prompt's positions for this site, found once (the summary site adds the end and
        // padding tokens to the base word's; a prompt without the base word is an error here).
        var base = try pipeline.encodePrompts(request)
        if var c = base.branches[.conditional] {
            c.basePositions = try site.positions(of: baseWord, in: request.prompt, tokenizer: pipeline.tokenizer)
            base.branches[.conditional] = c
        }
        guard site == .input else { return try attach(to: base, v: v) }
        let cond = try promptBranch(of: base, v: v)
        let ids = pipeline.tokenizer.encode(request.prompt)
        func encode(_ offset: Tensor) -> Tensor {
            GradMode.noGrad {
                let c = pipeline.textEncoder([ids], clipSkip: request.clipSkip, inputOffset: (cond.basePositions, offset))
                return c.expanded([request.count, c.shape[1], c.shape[2]]).contiguous()
            }
        }
        var out = base
        out.branches[.conditional] = TextConditioning(context: encode(targetOffset * v), basePositions: cond.basePositions)
        out.branches[.auxiliary] = TextConditioning(context: encode(auxiliaryOffset), basePositions: cond.basePositions)
        out.branches[.plain] = cond
        return out
    }

    /// `conditioning` (its prompt branch's base positions set) with v·δ_target there, the
    /// auxiliary branch and the plain prompt added (output and summary sites).
    func attach(to conditioning: Conditioning, v: Float) throws -> Conditioning {
        var cond = try promptBranch(of: conditioning, v: v)
        var out = conditioning
        out.branches[.plain] = cond
        let aux = TextConditioning(context: cond.context, basePositions: cond.basePositions, offset: auxiliaryOffset)
        cond.offset = targetOffset * v
        out.branches[.conditional] = cond
        out.branches[.auxiliary] = aux
        return out
    }

    /// The prompt branch δ goes into, once it is known to name the base word and `v` is finite.
    func promptBranch(of conditioning: Conditioning, v: Float) throws -> TextConditioning {
        guard let cond = conditioning.branches[.conditional] else { throw GenerationError.badValue("no prompt branch to attach OneActor to") }
        guard !cond.basePositions.isEmpty else {
            throw GenerationError.badValue("the prompt does not name the base word '\(baseWord)'; OneActor's offset goes there")
        }
        guard v.isFinite else { throw GenerationError.badValue("the interpolation weight v must be a finite number, got \(v)") }
        return cond
    }
}
