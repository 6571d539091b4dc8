// Hostile model folders are clear errors naming the file and the key, never a crash: sizes out
// of range, groups or heads that do not divide the channels, empty block lists, a vocabulary
// the embedding cannot index, shard names that leave the component folder, short LDM keys.

import XCTest
@testable import Pipeline

final class HostileConfigTests: XCTestCase {
    func copyOfFixture(_ name: String = "b") throws -> String {
        let dir = NSTemporaryDirectory() + "troupe-hostile-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: Fixtures.url("sd/\(name)").path, toPath: dir)
        return dir
    }

    /// Rewrites one key of `component/config.json` and expects loading to fail naming `expect`.
    func expectRefused(_ component: String, _ key: String, _ value: Any, mentions expect: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try copyOfFixture()
        let path = dir + "/\(component)/config.json"
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        obj[key] = value
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: DiffusersFolder(path: dir)), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(expect) && "\(e)".contains("config.json"), "\(key) = \(value): \(e)", file: file, line: line)
        }
    }

    func testOutOfRangeConfigsAreRefusedByKey() throws {
        try expectRefused("unet", "norm_num_groups", 0, mentions: "norm_num_groups")
        try expectRefused("unet", "norm_num_groups", 7, mentions: "norm_num_groups")
        try expectRefused("unet", "block_out_channels", [Int](), mentions: "block")
        try expectRefused("unet", "attention_head_dim", 0, mentions: "heads")
        try expectRefused("unet", "attention_head_dim", 5, mentions: "heads")
        try expectRefused("unet", "layers_per_block", 1_000_000, mentions: "layers_per_block")
        try expectRefused("unet", "cross_attention_dim", -3, mentions: "cross_attention_dim")
        try expectRefused("text_encoder", "num_attention_heads", 0, mentions: "num_attention_heads")
        try expectRefused("text_encoder", "num_attention_heads", 5, mentions: "num_attention_heads")
        try expectRefused("text_encoder", "max_position_embeddings", 10, mentions: "max_position_embeddings")
        try expectRefused("vae", "norm_num_groups", 0, mentions: "norm_num_groups")
        try expectRefused("vae", "block_out_channels", [Int](), mentions: "block_out_channels")
        try expectRefused("unet", "norm_num_groups", "eight", mentions: "norm_num_groups")
    }

    /// A vocabulary smaller than the tokenizer's ids: the embedding's shape mismatch names it
    /// (checked again after loading, for weights that match such a config).
    func testVocabularyTheEmbeddingCannotIndex() throws {
        let dir = try copyOfFixture()
        let path = dir + "/text_encoder/config.json"
        var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        obj["vocab_size"] = 10
        try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StableDiffusionPipeline(folder: DiffusersFolder(path: dir))) { e in
            XCTAssertTrue("\(e)".contains("token_embedding"), "\(e)")
        }
    }

    func testShardIndexMayNotLeaveTheComponentFolder() throws {
        let dir = try copyOfFixture()
        let unet = dir + "/unet"
        try FileManager.default.removeItem(atPath: unet + "/diffusion_pytorch_model.safetensors")
        for bad in ["../text_encoder/model.safetensors", "/etc/hostname", "sub/x.safetensors", "notes.txt"] {
            let index = ["weight_map": ["conv_in.weight": bad]]
            try JSONSerialization.data(withJSONObject: index).write(to: URL(fileURLWithPath: unet + "/diffusion_pytorch_model.safetensors.index.json"))
            XCTAssertThrowsError(try DiffusersFolder(path: dir).weightFiles("unet", baseName: "diffusion_pytorch_model")) { e in
                XCTAssertTrue("\(e)".contains("weight_map"), "\(bad): \(e)")
            }
        }
    }

    func testShortSingleFileKeysMapToNothing() {
        for k in ["time_embed", "out", "input_blocks", "output_blocks.1", "middle_block", "input_blocks.1.0", ""] {
            XCTAssertNil(SingleFileCheckpoint.unetKey(k, layers: 2, upHasAttention: [true, true]), k)
        }
        for k in ["encoder", "encoder.mid", "decoder.mid.attn_1", "encoder.down.0"] {
            XCTAssertNil(SingleFileCheckpoint.vaeKey(k, levels: 3), k)
        }
        XCTAssertEqual(SingleFileCheckpoint.unetKey("time_embed.0.weight", layers: 2, upHasAttention: []), "time_embedding.linear_1.weight")
    }
}
