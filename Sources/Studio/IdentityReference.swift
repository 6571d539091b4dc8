// The identity embedding at generation time (design §4), one place for `generate`, `eval` and
// the studio: the model's identity adapter (models/identity/adapter.safetensors for
// troupe-mini, or a file given) and the IdentityEncoder, and a reference image → the per-branch
// identity tokens a request's Conditioning carries.

import Foundation
import Pipeline
import Preview

struct IdentityReference {
    let adapter: IdentityAdapter
    let encoder: IdentityEncoder

    /// The adapter for the model loaded now (refused by name when it was trained for another)
    /// and the encoder it was trained with.
    static func load(pipeline: StableDiffusionPipeline, adapter path: String? = nil) throws -> IdentityReference {
        guard let adapterPath = path ?? ModelLocator.locate(ModelLocator.identityAdapterFile) else {
            throw StudioError.badInput("no identity adapter (models/identity/adapter.safetensors); train one with `troupe identity train` and pass --identity-adapter FILE")
        }
        guard let encoderPath = ModelLocator.locate(ModelLocator.identityEncoderFile) else {
            throw StudioError.badInput("the IdentityEncoder (models/identity/encoder.safetensors) was not found")
        }
        do {
            let a = try IdentityAdapter.load(path: adapterPath, unet: pipeline.unet, model: pipeline.fingerprint)
            let e = try IdentityEncoder(weights: WeightReader(paths: [encoderPath]))
            guard a.embedDim == IdentityEncoder.dimension,
                  !a.isSpatial || (a.spatialChannels == IdentityEncoder.spatialChannels && a.spatialPositions == IdentityEncoder.spatialPositions) else {
                throw StudioError.badInput("\(adapterPath) reads \(a.embedDim)-wide identity vectors and a \(a.spatialChannels)×\(a.spatialPositions) feature map; the IdentityEncoder gives \(IdentityEncoder.dimension) and \(IdentityEncoder.spatialChannels)×\(IdentityEncoder.spatialPositions)")
            }
            return IdentityReference(adapter: a, encoder: e)
        } catch let e as StudioError { throw e } catch let e as IdentityAdapterError { throw StudioError.badInput("\(e)") } catch { throw StudioError.wrap(error) }
    }

    /// What the adapter reads of a reference image [1, 3, 64, 64] in [−1, 1]: its identity
    /// vector [1, 128], and for a spatial adapter the encoder's feature map after it.
    func embedding(_ image: Tensor) throws -> Tensor {
        let n = World.imageSize
        guard image.shape == [1, 3, n, n] else {
            throw StudioError.badInput("an identity reference must be \(n)×\(n) (the IdentityEncoder's input), this one is \(image.shape[3])×\(image.shape[2])")
        }
        return encoder.adapterFeatures(image, spatial: adapter.isSpatial)
    }

    /// The identity features of a PNG file; anything that is not a readable PNG is a clear error.
    func embedding(png path: String) throws -> Tensor {
        let img: RGBImage
        do { img = try PNGCodec.read(path: path) } catch { throw StudioError.badInput("identity reference \(path): \(error)") }
        do { return try embedding(ImageTensors.tensor(from: img)) } catch let e as StudioError { throw StudioError.badInput("identity reference \(path): \(e.description)") }
    }

    /// The character's target image, its identity reference by default.
    static func targetPath(of record: CharacterRecord, in store: CharacterStore) throws -> String {
        guard let target = record.target else {
            throw StudioError.badInput("\(record.name) has no target image to use as its identity reference; accept one (troupe character accept \(record.name) FILE.png) or pass --identity-ref FILE")
        }
        return store.folder(record.name) + "/" + target
    }

    /// What a PNG records of the identity embedding: its scale and reference (a file name, or
    /// GenerationPNG.Field.characterTarget).
    static func pngFields(scale: Float, reference: String) -> [(String, String)] {
        [(GenerationPNG.Field.identityScale, GenerationPNG.text(scale)), (GenerationPNG.Field.identityReference, reference)]
    }

    /// `conditioning` with the identity tokens of `embedding` at `scale`.
    func attach(to conditioning: Conditioning, embedding: Tensor, scale: Float) throws -> Conditioning {
        guard scale.isFinite, abs(scale) <= 100 else { throw StudioError.badInput("--identity-scale must be a finite number (at most 100 in size), got \(scale)") }
        var c = conditioning
        c.crossAttentionExtension = adapter.conditioning(identity: embedding, scale: scale)
        return c
    }
}
