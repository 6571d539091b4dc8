// Text encoder, UNet (ε and mid-block) and VAE against diffusers/transformers on the tiny
// random pipelines of tools/fixtures/sd.py (fp16 weights on disk, fp32 compute).
// Tolerance: max abs error ≤ 1e-4 × max(1, |reference|) unless stated.

import XCTest
@testable import Pipeline

final class ModelParityTests: XCTestCase {
    func folder(_ name: String) throws -> DiffusersFolder { try DiffusersFolder(path: Fixtures.url("sd/\(name)").path) }
    func ref(_ name: String) throws -> SafetensorsFile { try Fixtures.file("sd/\(name).safetensors") }

    func testTextEncoder() throws {
        for name in ["a", "b"] {
            let te = try folder(name).textEncoder(), r = try ref(name)
            let ids = try r.integers("tok.ids")
            let batch = [Array(ids[0..<77]), Array(ids[77..<154])]
            assertClose(te(batch), try r.tensor("te.last"), tol: 1e-4, "\(name) last hidden state")
            assertClose(te(batch, clipSkip: 2), try r.tensor("te.skip2"), tol: 1e-4, "\(name) clip skip 2")
        }
    }

    func testUNet() throws {
        for name in ["a", "b"] {
            let unet = try folder(name).unet(), r = try ref(name)
            let x = try r.tensor("unet.sample"), ctx = try r.tensor("unet.context")
            for t in [999, 500, 1] {
                let out = GradMode.noGrad { unet(x, timesteps: [Float(t)], context: ctx) }
                assertClose(out.sample, try r.tensor("unet.eps_t\(t)"), tol: 1e-4, "\(name) ε at t=\(t)")
                assertClose(out.mid, try r.tensor("unet.mid_t\(t)"), tol: 1e-4, "\(name) mid-block at t=\(t)")
            }
        }
    }

    func testVAE() throws {
        for name in ["a", "b"] {
            let vae = try folder(name).vae(), r = try ref(name)
            GradMode.noGrad {
                assertClose(vae.decode(try! r.tensor("vae.z")), try! r.tensor("vae.decoded"), tol: 1e-4, "\(name) decode")
                assertClose(vae.encode(try! r.tensor("vae.image")).mean, try! r.tensor("vae.mean"), tol: 1e-4, "\(name) encode mean")
            }
        }
    }

    func testPickleCheckpointsAreRefused() throws {
        let dir = NSTemporaryDirectory() + "troupe-pickle-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir + "/unet", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/model_index.json", contents: Data("{}".utf8))
        FileManager.default.createFile(atPath: dir + "/unet/diffusion_pytorch_model.bin", contents: Data([0x80, 2]))
        XCTAssertThrowsError(try DiffusersFolder(path: dir).weightFiles("unet", baseName: "diffusion_pytorch_model")) { e in
            XCTAssertTrue("\(e)".contains("arbitrary code"), "\(e)")
        }
    }

    func testWrongShapeNamesKeyShapesAndFile() throws {
        var cfg = try folder("a").config(UNetConfig.self, "unet")
        cfg.crossAttentionDim = 40
        let reader = try folder("a").reader("unet", baseName: "diffusion_pytorch_model")
        XCTAssertThrowsError(try UNet2DConditionModel(config: cfg, weights: reader)) { e in
            guard case let .shapeMismatch(key, expected, found, file)? = e as? WeightsError else { return XCTFail("\(e)") }
            XCTAssertTrue(key.hasSuffix("attn2.to_k.weight"), key)
            XCTAssertEqual(expected, [32, 40]); XCTAssertEqual(found, [32, 32])
            XCTAssertTrue(file.hasSuffix("diffusion_pytorch_model.fp16.safetensors"), file)
        }
    }
}

import Foundation

final class SingleFileTests: XCTestCase {
    /// The LDM-layout file of tiny pipeline "a" (checked in the fixture script with diffusers'
    /// from_single_file) loads to the same UNet, VAE and text encoder outputs as the folder.
    func testSingleFileEqualsFolder() throws {
        let folder = try DiffusersFolder(path: Fixtures.url("sd/a").path)
        let pipe = try SingleFileCheckpoint.load(
            path: Fixtures.url("sd/a-single-file.safetensors").path, tokenizerDirectory: folder.componentPath("tokenizer"),
            unet: folder.config(UNetConfig.self, "unet"), vae: folder.config(VAEConfig.self, "vae"),
            textEncoder: folder.config(CLIPTextConfig.self, "text_encoder"))
        let r = try Fixtures.file("sd/a.safetensors")
        let ids = try r.integers("tok.ids")
        assertClose(pipe.textEncoder([Array(ids[0..<77])]), try r.tensor("te.last").sliced(0, 0..<1), tol: 1e-4, "text encoder")
        let out = GradMode.noGrad { pipe.unet(try! r.tensor("unet.sample"), timesteps: [500], context: try! r.tensor("unet.context")) }
        assertClose(out.sample, try r.tensor("unet.eps_t500"), tol: 1e-4, "unet")
        assertClose(GradMode.noGrad { pipe.vae.decode(try! r.tensor("vae.z")) }, try r.tensor("vae.decoded"), tol: 1e-4, "vae")
    }

    func testPickleAndNonCheckpointFilesAreRefused() throws {
        XCTAssertThrowsError(try SingleFileCheckpoint.load(path: "/tmp/model.ckpt", tokenizerDirectory: "/tmp")) { e in
            XCTAssertTrue("\(e)".contains("arbitrary code"), "\(e)")
        }
        XCTAssertThrowsError(try SingleFileCheckpoint.load(path: Fixtures.url("python_written.safetensors").path, tokenizerDirectory: "/tmp")) { e in
            XCTAssertTrue("\(e)".contains("not a single-file"), "\(e)")
        }
    }
}

final class TiledDecodeTests: XCTestCase {
    /// 20×14 latents in tiles of 8 with 25% overlap against diffusers' enable_tiling() decode.
    func testTiledDecodeMatchesDiffusers() throws {
        let vae = try DiffusersFolder(path: Fixtures.url("sd/a").path).vae()
        let r = try Fixtures.file("sd/vae-tiled.safetensors")
        XCTAssertEqual(vae.tileLatentSize, Int(try r.tensor("tile_latent").item()))
        let out = GradMode.noGrad { vae.decodeTiled(try! r.tensor("z")) }
        assertClose(out, try r.tensor("decoded"), tol: 1e-4, "tiled decode")
    }
}

final class UNetHookTests: XCTestCase {
    func load() throws -> (UNet2DConditionModel, Tensor, Tensor) {
        let unet = try DiffusersFolder(path: Fixtures.url("sd/a").path).unet()
        let r = try Fixtures.file("sd/a.safetensors")
        return (unet, try r.tensor("unet.sample"), try r.tensor("unet.context"))
    }

    /// A LoRA adapter on a layer equals merging scale·B·A into that layer's weight.
    func testLoRAAdapterEqualsMergedWeight() throws {
        let (unet, x, ctx) = try load()
        let path = "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q"
        let layer = try XCTUnwrap(unet.linears[path])
        XCTAssertNotNil(unet.linears["time_embedding.linear_1"])
        XCTAssertNotNil(unet.linears["mid_block.attentions.0.transformer_blocks.0.ff.net.2"])
        var rng = SplitMixRandom(seed: 4)
        let a = Tensor.randn([2, layer.inFeatures], using: &rng) * 0.5, b = Tensor.randn([layer.outFeatures, 2], using: &rng) * 0.5
        let input = Tensor.randn([3, layer.inFeatures], using: &rng)
        let merged = layer.weight.tensor + b.matmul(a) * 0.75
        layer.adapters = [LowRankAdapter(down: a, up: b, scale: 0.75)]
        assertClose(layer(input), input.linear(merged, layer.bias), tol: 1e-5, "adapter vs merged")
        // …and it reaches the UNet's output.
        let with = GradMode.noGrad { unet(x, timesteps: [500], context: ctx).sample }
        layer.adapters = []
        let without = GradMode.noGrad { unet(x, timesteps: [500], context: ctx).sample }
        XCTAssertGreaterThan((with - without).square().sum().item(), 1e-6)
        assertClose(without, try Fixtures.file("sd/a.safetensors").tensor("unet.eps_t500"), tol: 1e-4, "adapter removed")
    }

    /// The cross-attention hook sees every attn2 with its queries, and its term is added.
    final class Recorder: CrossAttentionExtension {
        var calls: [(String, [Int], Int)] = []
        var add: Float = 0
        func extra(layer: String, query: Tensor, heads: Int) -> Tensor? {
            calls.append((layer, query.shape, heads))
            return add == 0 ? nil : Tensor(filled: add, shape: query.shape)
        }
    }

    func testCrossAttentionHookIsCalledForEveryCrossAttention() throws {
        let (unet, x, ctx) = try load()
        let rec = Recorder()
        let base = GradMode.noGrad { unet(x, timesteps: [500], context: ctx, extension: rec).sample }
        assertClose(base, try Fixtures.file("sd/a.safetensors").tensor("unet.eps_t500"), tol: 1e-4, "nil term changes nothing")
        let attn2 = unet.linears.keys.filter { $0.hasSuffix("attn2.to_q") }.count
        XCTAssertEqual(rec.calls.count, attn2)
        XCTAssertTrue(rec.calls.allSatisfy { $0.0.hasSuffix("attn2") && $0.1[0] == x.shape[0] })
        rec.add = 0.1
        let shifted = GradMode.noGrad { unet(x, timesteps: [500], context: ctx, extension: rec).sample }
        XCTAssertGreaterThan((shifted - base).square().sum().item(), 1e-6)
    }
}
