// `troupe identity show [--adapter FILE] [--model M] [PNG…] [--json]`: what the identity
// embedding's files are — the adapter's tokens, training and the model it was trained for
// (and whether that is the model given, troupe-mini by default: an adapter works only with its
// own model), the IdentityEncoder's training and held-out retrieval — and, given 64×64 PNGs, how
// alike the IdentityEncoder finds them: the cosine of their identity vectors, pair by pair (1:
// the same identity to it), so an artist can check how alike a set of generations is before
// accepting them.

import ArgumentParser
import Foundation
import Pipeline
import Preview

extension IdentityCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show",
                                                        abstract: "The identity adapter and encoder, and how alike the encoder finds some images.")
        @Option(help: "Identity adapter file (default: models/identity/adapter.safetensors).")
        var adapter: String?
        @Option(help: "Model to check the adapter against (default: troupe-mini).")
        var model: String?
        @Argument(help: "64×64 PNGs to compare by identity (at most 32).")
        var images: [String] = []
        @Flag(help: "Print one JSON object on stdout.")
        var json = false

        func run() throws {
            guard images.count <= 32 else { throw StudioError.badInput("at most 32 images, got \(images.count)") }
            guard let adapterPath = adapter ?? ModelLocator.locate(ModelLocator.identityAdapterFile) else {
                throw StudioError.badInput("no identity adapter (models/identity/adapter.safetensors); pass --adapter FILE")
            }
            guard let encoderPath = ModelLocator.locate(ModelLocator.identityEncoderFile) else {
                throw StudioError.badInput("the IdentityEncoder (models/identity/encoder.safetensors) was not found")
            }
            let adapterMeta = try metadata(adapterPath, kind: "identity-adapter")
            let encoderMeta = try metadata(encoderPath, kind: nil)
            let (pipe, modelName) = try ModelLocator.loadPipeline(model)
            let madeFor = adapterMeta["model"]
            let vectors = try identityVectors(encoderPath)
            let similarity = vectors.map { a in vectors.map { b in Double(zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }) } }
            if json {
                var obj: [String: Any] = [
                    "adapter": ["path": adapterPath, "metadata": adapterMeta, "model": madeFor ?? NSNull(), "fits_model": madeFor == pipe.fingerprint],
                    "encoder": ["path": encoderPath, "metadata": encoderMeta, "dimension": IdentityEncoder.dimension],
                    "model": ["name": modelName, "fingerprint": pipe.fingerprint],
                ]
                if !images.isEmpty { obj["images"] = images; obj["similarity"] = similarity }
                try printJSON(obj)
                return
            }
            func field(_ m: [String: String], _ k: String) -> String { m[k] ?? "?" }
            var lines = ["adapter   \(adapterPath)"]
            let spatial = adapterMeta["spatial_positions"].map { " + \($0) spatial tokens of \(field(adapterMeta, "spatial_channels")) channels" } ?? ""
            lines.append("          \(field(adapterMeta, "tokens")) tokens from a \(field(adapterMeta, "embed_dim"))-d identity vector\(spatial)")
            lines.append("          trained \(field(adapterMeta, "steps")) steps × batch \(field(adapterMeta, "batch")), learning rate \(field(adapterMeta, "learning_rate"))"
                         + (adapterMeta["init_from"].map { ", from \($0)" } ?? ""))
            lines.append("          for model \(madeFor ?? "? (not recorded)"): " + (madeFor == pipe.fingerprint
                ? "this is \(modelName)" : "NOT \(modelName) (\(pipe.fingerprint)); it cannot be used with it"))
            lines.append("encoder   \(encoderPath)")
            lines.append("          \(IdentityEncoder.dimension)-d unit vectors; trained \(field(encoderMeta, "steps")) steps × batch \(field(encoderMeta, "batch"))")
            if let r = encoderMeta["retrieval_renders"], let t = encoderMeta["retrieval_vae_round_trip"] {
                lines.append("          held-out top-1 identity retrieval \(r) on renders, \(t) on \(field(encoderMeta, "round_trip_model")) VAE round trips")
            }
            if !images.isEmpty {
                lines.append("identity similarity (cosine of the encoder's vectors; 1 = the same identity to it):")
                let names = images.map { ($0 as NSString).lastPathComponent }
                let width = min(24, names.map(\.count).max() ?? 0)
                for (i, row) in similarity.enumerated() {
                    let name = names[i].count > width ? String(names[i].prefix(width - 1)) + "…" : names[i].padding(toLength: width, withPad: " ", startingAt: 0)
                    lines.append("  \(name)  " + row.map { String(format: "%5.2f", $0) }.joined(separator: " "))
                }
                if images.count > 1 {
                    let pairs = (0..<images.count).flatMap { i in ((i + 1)..<images.count).map { similarity[i][$0] } }
                    lines.append(String(format: "  mean over the %d pairs %.3f, lowest %.3f", pairs.count, pairs.reduce(0, +) / Double(pairs.count), pairs.min()!))
                }
            }
            print(lines.joined(separator: "\n"))
        }

        /// A file's safetensors metadata; `kind`, when given, must be its "troupe" entry.
        private func metadata(_ path: String, kind: String?) throws -> [String: String] {
            let f: SafetensorsFile
            do { f = try SafetensorsFile(path: path) } catch { throw StudioError.badInput("\(error)") }
            if let kind, f.metadata["troupe"] != kind {
                throw StudioError.badInput("\(path) is not an \(kind) file (its metadata says troupe = \(f.metadata["troupe"] ?? "nothing"))")
            }
            return f.metadata
        }

        /// The encoder's unit identity vector of each image.
        private func identityVectors(_ encoderPath: String) throws -> [[Float]] {
            guard !images.isEmpty else { return [] }
            let encoder: IdentityEncoder
            do { encoder = try IdentityEncoder(weights: WeightReader(paths: [encoderPath])) } catch { throw StudioError.wrap(error) }
            let n = World.imageSize
            return try images.map { path in
                let img: RGBImage
                do { img = try PNGCodec.read(path: path) } catch { throw StudioError.badInput("\(error)") }
                guard img.width == n, img.height == n else {
                    throw StudioError.badInput("\(path) is \(img.width)×\(img.height); the IdentityEncoder reads \(n)×\(n) images")
                }
                return encoder.embed(ImageTensors.tensor(from: img)).toArray()
            }
        }
    }
}
