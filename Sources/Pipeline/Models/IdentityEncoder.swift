// IdentityEncoder (design §4): a 64×64 sprite → a unit-length identity vector, the same for one
// character in any pose, expression, background or view, and far from other characters.
// SpriteTrunk → linear 256 → 128 → L2 normalisation. Trained contrastively on the World
// (Tuning/IdentityEncoderTraining.swift); stage 2's identity loss and the identity adapter
// read it.

public final class IdentityEncoder {
    public static let dimension = 128
    let trunk: SpriteTrunk
    let projection: Linear
    public let reader: WeightReader

    public init(weights reader: WeightReader) throws {
        self.reader = reader
        let w = reader.scope("")
        trunk = try SpriteTrunk(w)
        projection = try Linear(w("projection"), in: SpriteTrunk.featureWidth, out: IdentityEncoder.dimension)
    }

    public convenience init(seed: UInt64) throws { try self.init(weights: WeightReader(randomSeed: seed)) }

    public var namedParameters: [(String, Tensor)] { reader.namedParameters(extra: trunk.normParameters) }

    /// Images [B, 3, 64, 64] in [−1, 1] → identity vectors [B, 128], each of length 1.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        Self.unit(projection(trunk(x)))
    }

    /// Rows of [B, d] scaled to unit length (the space every identity vector lives in).
    static func unit(_ e: Tensor) -> Tensor { e / (e.square().sum(axes: [1], keepDim: true) + 1e-8).sqrt() }

    /// The trunk's feature maps (a perceptual loss that looks at identity).
    public func features(_ x: Tensor) -> [Tensor] { trunk.featureMaps(x) }

    /// The identity term the tuners add (stage 2 and 3, OneActor): L_id = 1 − mean_i ⟨E(x_i), t_i⟩
    /// for images [B, 3, 64, 64] in [−1, 1] and target identity vectors [B or 1, 128]
    /// (differentiable in `images`).
    public func identityLoss(_ images: Tensor, targets: Tensor) -> Tensor {
        Tensor(scalar: 1) - (callAsFunction(images) * targets).sum(axes: [1]).mean()
    }

    /// Identity vectors without gradients.
    public func embed(_ x: Tensor) -> Tensor { GradMode.noGrad { callAsFunction(x) } }

    /// The spatial feature map an identity adapter with spatial tokens reads: the trunk's 8×8
    /// stage (96 channels), fine enough to place a two-pixel eye or an earring, coarse enough
    /// to be past the pixels. One token per position.
    public static let spatialStage = 3
    public static let spatialChannels = SpriteTrunk.widths[spatialStage]
    public static let spatialPositions = (World.imageSize >> spatialStage) * (World.imageSize >> spatialStage)

    /// What an identity adapter reads, without gradients: rows [B, 128] of identity vectors,
    /// followed, when `spatial`, by the 8×8 map flattened channel-major ([B, 128 + 96·64]).
    public func adapterFeatures(_ x: Tensor, spatial: Bool) -> Tensor {
        GradMode.noGrad {
            guard spatial else { return callAsFunction(x) }
            let maps = trunk.featureMaps(x)
            let b = x.shape[0]
            let v = Self.unit(projection(trunk.head(maps[4])))
            return Tensor.concat([v, maps[Self.spatialStage].reshaped([b, -1])], dim: 1)
        }
    }

    public func save(to path: String, metadata: [String: String]) throws {
        try SafetensorsWriter.write(Dictionary(uniqueKeysWithValues: namedParameters), to: path, metadata: metadata)
    }
}
