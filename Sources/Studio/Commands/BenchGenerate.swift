// `troupe bench generate --preset mini`: end-to-end text → image time of the embedded model
// (4 images, 64×64, 25 steps, guidance 6; prompt encoding, sampling and VAE decode), best of
// several runs after a warm-up. Without troupe-mini in the checkout it times the same
// architecture with random weights (same work) and says so.

import ArgumentParser
import Foundation
import Pipeline

struct BenchGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Text → image time: 4 images, 64×64, 25 steps on troupe-mini.")

    @Option(help: "Preset: mini (troupe-mini).")
    var preset = "mini"
    @Option(help: "Model folder to time instead of the embedded one.")
    var model: String?
    @Option(help: "Timed runs (the best is reported).")
    var repeats = 5
    @Flag(help: "Print one JSON object on stdout.")
    var json = false

    func run() throws {
        guard preset == "mini" else { throw StudioError.badInput("unknown preset '\(preset)' (available: mini)") }
        let pipe: StableDiffusionPipeline, source: String
        if model != nil || (try? ModelLocator.resolve(nil)) != nil {
            let (p, name) = try ModelLocator.loadPipeline(model)
            pipe = p; source = name
        } else {
            let a = BaseModelArchitecture.mini
            do {
                pipe = StableDiffusionPipeline(
                    tokenizer: try CLIPTokenizer(directory: ModelLocator.clipTokenizer(for: "bench generate")),
                    textEncoder: try CLIPTextModel(config: a.textEncoder, weights: WeightReader(randomSeed: 1)),
                    unet: try UNet2DConditionModel(config: a.unet, weights: WeightReader(randomSeed: 2)),
                    vae: try AutoencoderKL(config: a.vae, weights: WeightReader(randomSeed: 3)),
                    schedulerConfig: a.scheduler, name: a.name)
            } catch { throw StudioError.wrap(error) }
            source = "troupe-mini architecture, random weights (model not in this checkout)"
        }
        // The benchmark's protocol fixes the step count; guidance (which costs nothing) is the model's.
        var r = pipe.request(prompt: "a knight waving, smiling, in a forest, front view")
        r.steps = 25; r.count = 4; r.seed = 1; r.width = 64; r.height = 64
        var best = Double.infinity
        do {
            _ = try pipe.generate(r)   // warm-up: page in weights, size buffers
            for _ in 0..<max(1, repeats) {
                let t = Date()
                _ = try pipe.generate(r)
                best = min(best, Date().timeIntervalSince(t))
            }
        } catch { throw StudioError.wrap(error) }
        if json {
            try printJSON(["seconds": best, "images": 4, "steps": 25, "size": 64, "model": source, "threads": BLAS.threads] as [String: Any])
        } else {
            print(String(format: "generate %@: 4 images 64×64, 25 steps: %.3f s (target < 1 s)", source, best))
        }
    }
}
