// `troupe train-base` and `troupe eval` as a user runs them (micro model, tiny protocol).

import XCTest
import Pipeline
import Preview
@testable import Studio

final class TrainAndEvalCommandTests: XCTestCase {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "troupe-cmd-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    func testTrainBaseStopsWithACheckpointAndResumes() throws {
        let out = tempDir() + "/run"
        let first = try TroupeRun.run(["train-base", "--out", out, "--architecture", "micro", "--vae-steps", "3", "--steps", "3",
                                       "--learning-rate", "3e-4", "--stop-after", "2", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let a = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(a["phase"] as? String, "vae"); XCTAssertEqual(a["step"] as? Int, 2)
        XCTAssertTrue(first.stderr.contains("--resume"), first.stderr)
        let again = try TroupeRun.run(["train-base", "--out", out, "--architecture", "micro"])
        XCTAssertEqual(again.status, 2)
        XCTAssertTrue(again.stderr.contains("already holds a run"), again.stderr)
        let relearn = try TroupeRun.run(["train-base", "--out", out, "--resume", "--learning-rate", "1e-4"])
        XCTAssertEqual(relearn.status, 2)
        XCTAssertTrue(relearn.stderr.contains("--learning-rate applies to a new run"), relearn.stderr)
        // Resumed in the VAE phase, the probe's fit counts its steps from the UNet phase's start.
        let second = try TroupeRun.run(["train-base", "--out", out, "--resume", "--caption-probe", "0.1", "--probe-fit-steps", "2", "--probe-context", "off", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let b = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(b["phase"] as? String, "done"); XCTAssertEqual(b["steps_this_run"] as? Int, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model/model_index.json"))
        // metrics.jsonl: VAE steps 1…3 then UNet steps 1…3, each once.
        let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let steps = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .map { "\($0["phase"]!)\($0["step"]!)" }
        XCTAssertEqual(steps, ["vae1", "vae2", "vae3", "unet1", "unet2", "unet3"])
        let saved = try BaseModelTrainer.resume(directory: out, tokenizerDirectory: TroupeRun.repo.appendingPathComponent("models/clip-tokenizer").path)
        XCTAssertEqual(saved.state.config.captionProbeWeight, 0.1)
        XCTAssertEqual(saved.state.config.unetLearningRate, 3e-4)
        XCTAssertEqual(saved.state.config.captionProbeFitUntil, 2)
        XCTAssertFalse(saved.state.config.captionProbeNamesContext)
    }

    /// Options a new run cannot take are refused before its folder is claimed: nothing is left
    /// behind in --out.
    func testRefusedNewRunLeavesNoFolder() throws {
        let out = tempDir() + "/run"
        for bad in [["--steps", "3", "--decay-steps", "5"], ["--judge-loss", "-1"], ["--probe-fit-steps", "-1"], ["--probe-context", "maybe"], ["--learning-rate", "0"]] {
            let r = try TroupeRun.run(["train-base", "--out", out, "--architecture", "micro", "--vae-steps", "1"] + bad)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.contains(bad[bad.count - 2]), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "\(bad) left \(out)")
        }
    }

    /// A folder with a random judge, `characters` as chars.jsonl and `prompts` as prompts.txt.
    func evalProtocol(characters: String, prompts: String) throws -> (dir: String, judge: String) {
        let dir = tempDir()
        let judge = dir + "/judge.safetensors"
        try AttributeClassifier(seed: 5).save(to: judge, metadata: [:])
        try characters.write(toFile: dir + "/chars.jsonl", atomically: true, encoding: .utf8)
        try prompts.write(toFile: dir + "/prompts.txt", atomically: true, encoding: .utf8)
        return (dir, judge)
    }

    func testEvalReportsTheDesignKeys() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n{\"name\": \"w\", \"prompt\": \"a wizard\"}\n",
                                            prompts: "{} waving, smiling, in a forest, front view\n# a comment\n{} walking, sad, at night, side view\n")
        let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl",
                                   "--prompts", dir + "/prompts.txt", "--seeds", "2", "--steps", "2", "--grid", dir + "/grid.png", "--reference-draw", "3", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["n_images"] as? Int, 8)
        XCTAssertEqual(obj["reference_draw"] as? Int, 3, "the JSON says which draw of references (targets, accepted references) the methods had")
        let prompt = try XCTUnwrap((obj["methods"] as? [String: Any])?["prompt"] as? [String: Any])
        for k in ["identity_consistency", "prompt_fidelity"] {
            let v = try XCTUnwrap(prompt[k] as? Double, k)
            XCTAssertTrue((0...1).contains(v), "\(k) = \(v)")
        }
        XCTAssertEqual(prompt["n_images"] as? Int, 8)
        XCTAssertEqual(prompt["cfg"] as? Double, try XCTUnwrap(obj["cfg"] as? Double), "each method says the guidance it sampled at; untuned, the model's plain one")
        let classConsistency = try XCTUnwrap(prompt["class_consistency"] as? Double, "the base word alone, for the untuned model")
        XCTAssertTrue((0...1).contains(classConsistency))
        let perCharacter = try XCTUnwrap(prompt["per_character"] as? [[String: Any]])
        XCTAssertEqual(perCharacter.compactMap { $0["name"] as? String }, ["k", "w"])
        for e in perCharacter { XCTAssertTrue((0...1).contains(try XCTUnwrap(e["prompt_fidelity"] as? Double))) }
        let perPrompt = try XCTUnwrap(prompt["per_prompt"] as? [[String: Any]])
        XCTAssertEqual(perPrompt.compactMap { $0["prompt"] as? String }, ["{} waving, smiling, in a forest, front view", "{} walking, sad, at night, side view"])
        for e in perPrompt {
            XCTAssertTrue((0...1).contains(try XCTUnwrap(e["cross_prompt_consistency"] as? Double)))
            XCTAssertTrue((0...1).contains(try XCTUnwrap(e["within_prompt_consistency"] as? Double)))
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/grid.png"))
        let bad = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "prompt,bogus"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("unknown method 'bogus'") && bad.stderr.contains("stages+identity"), bad.stderr)
        let badScale = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "stages+identity", "--stage-identity-scale", "nan"])
        XCTAssertEqual(badScale.status, 2)
        XCTAssertTrue(badScale.stderr.contains("--stage-identity-scale must be a finite number"), badScale.stderr)
        for (flag, value) in [("--stage-lora-scale", "inf"), ("--stage-lora-scale", "1,"), ("--cfg", "3,x")] {
            let bad = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "stages", flag, value])
            XCTAssertEqual(bad.status, 2, "\(flag) \(value)")
            XCTAssertTrue(bad.stderr.contains("\(flag) takes comma-separated finite numbers"), bad.stderr)
        }
    }

    /// --mask-scene-words off,on: each method sampled both ways, one labelled row each; the
    /// mask changes the images of a prompt with scene words; bad values are refused.
    func testEvalSweepsSceneWordMasking() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        let args = ["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                    "--seeds", "2", "--steps", "2", "--methods", "prompt", "--json"]
        let r = try TroupeRun.run(args + ["--mask-scene-words", "off,on", "--grid", dir + "/grid.png"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["prompt mask off", "prompt mask on"])
        XCTAssertEqual(methods["prompt mask off"]?["mask_scene_words"] as? Bool, false)
        XCTAssertEqual(methods["prompt mask on"]?["mask_scene_words"] as? Bool, true)
        // The two rows' images differ (the grid's two rows), and "off" is the plain method.
        let grid = try PNGCodec.read(path: dir + "/grid.png")
        let half = grid.pixels.count / 2
        XCTAssertNotEqual(Array(grid.pixels[..<half]), Array(grid.pixels[half...]))
        let plain = try TroupeRun.run(args)
        let p = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        let only = try XCTUnwrap((p["methods"] as? [String: [String: Any]])?["prompt"])
        for k in ["identity_consistency", "prompt_fidelity", "per_attribute"] {
            XCTAssertEqual(only[k] as? NSObject, methods["prompt mask off"]?[k] as? NSObject, k)
        }
        for bad in ["maybe", "on,on", "off,"] {
            let b = try TroupeRun.run(args + ["--mask-scene-words", bad])
            XCTAssertEqual(b.status, 2, bad); XCTAssertTrue(b.stderr.contains("--mask-scene-words"), b.stderr)
        }
    }

    /// --subject-mask off,on: OneActor tuned once and sampled both ways, one labelled row each,
    /// with different images; methods without an offset get no such rows; bad values are refused.
    func testEvalSweepsTheSubjectMask() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight with red hair\"}\n",
                                            prompts: "{} waving, smiling, in a forest, front view\n")
        let args = ["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                    "--seeds", "2", "--steps", "2", "--methods", "prompt,oneactor", "--oneactor-steps", "2", "--v", "2", "--json"]
        let r = try TroupeRun.run(args + ["--subject-mask", "off,on", "--grid", dir + "/grid.png"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["prompt", "oneactor subject off", "oneactor subject on"])
        XCTAssertEqual(methods["oneactor subject off"]?["subject_mask"] as? Bool, false)
        XCTAssertEqual(methods["oneactor subject on"]?["subject_mask"] as? Bool, true)
        XCTAssertNil(methods["prompt"]?["subject_mask"])
        // Grid rows: prompt, then the character's two OneActor rows, which differ.
        let grid = try PNGCodec.read(path: dir + "/grid.png")
        let third = grid.pixels.count / 3
        XCTAssertNotEqual(Array(grid.pixels[third..<(2 * third)]), Array(grid.pixels[(2 * third)...]))
        for bad in ["yes", "off,off"] {
            let b = try TroupeRun.run(args + ["--subject-mask", bad])
            XCTAssertEqual(b.status, 2, bad); XCTAssertTrue(b.stderr.contains("--subject-mask"), b.stderr)
        }
    }

    /// Sweeps: a stage method is tuned once per character and sampled at each guidance × LoRA
    /// multiplier, one labelled row each; at multiplier 0 it is the base model, so its images
    /// and scores are the prompt method's at the same guidance.
    func testEvalSweepsGuidanceAndStageLoRAScale() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                                   "--seeds", "2", "--steps", "2", "--methods", "prompt,stage1", "--stage-steps", "2", "--cfg", "2,3", "--stage-lora-scale", "0,1",
                                   "--grid", dir + "/grid.png", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["prompt cfg 2", "prompt cfg 3", "stage1 cfg 2 lora 0", "stage1 cfg 2 lora 1", "stage1 cfg 3 lora 0", "stage1 cfg 3 lora 1"])
        XCTAssertEqual(obj["cfg"] as? [Double], [2, 3])
        XCTAssertEqual(obj["n_images"] as? Int, 12)
        for (key, m) in methods {
            XCTAssertEqual(m["method"] as? String, key.hasPrefix("stage1") ? "stage1" : "prompt")
            XCTAssertEqual(m["cfg"] as? Double, key.contains("cfg 2") ? 2 : 3, key)
            XCTAssertEqual(m["lora_scale"] as? Double, key.hasPrefix("stage1") ? (key.hasSuffix("lora 0") ? 0 : 1) : nil, key)
        }
        for g in ["2", "3"] {
            let plain = try XCTUnwrap(methods["prompt cfg \(g)"]), off = try XCTUnwrap(methods["stage1 cfg \(g) lora 0"])
            for k in ["identity_consistency", "prompt_fidelity", "per_attribute", "class_consistency"] {
                XCTAssertEqual(off[k] as? NSObject, plain[k] as? NSObject, "\(k) at cfg \(g): a LoRA at 0 is the base model")
            }
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/grid.png"))
        // --tuning-draw: the same references, other tuning draws — other images, and the JSON says which.
        func tuned(_ extra: [String], grid: String) throws -> [String: Any] {
            let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                                       "--seeds", "2", "--steps", "2", "--methods", "stage1", "--stage-steps", "2", "--stage-learning-rate", "0.01",
                                       "--grid", grid, "--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        }
        XCTAssertEqual(try tuned([], grid: dir + "/t0.png")["tuning_draw"] as? Int, 0)
        XCTAssertEqual(try tuned(["--tuning-draw", "5"], grid: dir + "/t5.png")["tuning_draw"] as? Int, 5)
        XCTAssertNotEqual(try PNGCodec.read(path: dir + "/t0.png").pixels, try PNGCodec.read(path: dir + "/t5.png").pixels)
    }

    /// `eval --json` of `methods` (with `method`, a tuned one among them) on the micro model,
    /// tuned twice with `seedsFlag` 2 and once alone at --tuning-draw 7919: the first run's rows,
    /// once checked to hold a row for each tuning and each soup, the second tuning's row being
    /// the lone tuning's (the other tuning, set aside, leaves no trace); and the judge.
    func twoTuningsAndTheSecondAlone(methods: String, method: String, seedsFlag: String, tuningArgs: [String]) throws -> (rows: [String: [String: Any]], judge: String) {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        func run(_ extra: [String]) throws -> [String: [String: Any]] {
            let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                                       "--seeds", "2", "--steps", "2", "--methods", methods, "--json"] + tuningArgs + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        }
        let several = try run([seedsFlag, "2"])
        XCTAssertTrue(Set(several.keys).isSuperset(of: ["seed 0", "seed 1", "soup 2", "soup 2 norm-matched"].map { method + " " + $0 }), "\(several.keys)")
        for (row, tuning) in [("seed 1", "seed 1"), ("soup 2", "soup"), ("soup 2 norm-matched", "soup norm-matched")] {
            XCTAssertEqual(several[method + " " + row]?["tuning"] as? String, tuning)
        }
        let alone = try run(["--tuning-draw", "7919"])
        for k in ["identity_consistency", "prompt_fidelity", "per_attribute"] {
            XCTAssertEqual(several[method + " seed 1"]?[k] as? NSObject, alone[method]?[k] as? NSObject, "\(k): the second tuning is --tuning-draw 7919's")
        }
        let bad = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", method, seedsFlag, "9"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("\(seedsFlag) must be in 1…8"), bad.stderr)
        return (several, judge)
    }

    /// --stage-seeds K: each character tuned K times (tuning seeds + 0, 7919, …), a row for each
    /// tuning alone and one for each of their soups. (The soups' arithmetic:
    /// LoRATests.testSoupIsTheMeanDeltaAndNormMatchedRestoresTheMembersNorm.)
    func testEvalTunesSeveralSeedsAndTheirSoup() throws {
        let (several, judge) = try twoTuningsAndTheSecondAlone(methods: "prompt,stage1", method: "stage1", seedsFlag: "--stage-seeds",
                                                               tuningArgs: ["--stage-steps", "2", "--stage-learning-rate", "0.01"])
        XCTAssertEqual(several.count, 5)
        XCTAssertNil(several["prompt"]?["tuning"], "an untuned method has one row")
        // Two tunings from one start agree only in part: their mean is shorter than either.
        let ratios = try XCTUnwrap(several["stage1 soup 2"]?["soup_norm_ratio"] as? [[String: Any]])
        let ratio = try XCTUnwrap(ratios.first?["ratio"] as? Double)
        XCTAssertTrue(ratio > 0 && ratio <= 1.0001, "\(ratio)")
        // Each tuning's training-side validation score (what best-of-K picks by), per character.
        let validation = try XCTUnwrap(several["stage1 soup 2"]?["tuning_validation"] as? [[String: Any]])
        XCTAssertEqual(validation.map { $0["name"] as? String }, ["k"])
        let scores = try XCTUnwrap(validation[0]["scores"] as? [Double])
        XCTAssertEqual(scores.count, 2)
        XCTAssertTrue(scores.allSatisfy { (-1...1).contains($0) }, "\(scores)")
        XCTAssertNotEqual(scores[0], scores[1], "two tunings, two models")
        let badBatch = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "stages", "--stage-batch", "0"])
        XCTAssertEqual(badBatch.status, 2)
        XCTAssertTrue(badBatch.stderr.contains("--stage-batch must be in 1…64"), badBatch.stderr)
    }

    /// A model whose troupe.json sets lora_soup K: without --stage-seeds a stage method is tuned K
    /// times and reported as one row under its own name — their norm-matched soup, what `tune
    /// stages` writes for that model — equal to --stage-seeds K's norm-matched row.
    func testEvalStagesFollowTheModelsSoup() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        let model = dir + "/soup-model"
        try FileManager.default.copyItem(atPath: JobTests.microModel, toPath: model)
        let config = model + "/" + SamplingDefaults.fileName
        var defaults = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: config))) as? [String: Any])
        defaults["lora_soup"] = 2
        try JSONSerialization.data(withJSONObject: defaults).write(to: URL(fileURLWithPath: config))
        let eval = ["eval", "--model", model, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                    "--seeds", "2", "--steps", "2", "--methods", "stage1", "--stage-steps", "2", "--stage-learning-rate", "0.01"]
        func run(_ extra: [String]) throws -> [String: [String: Any]] {
            let r = try TroupeRun.run(eval + ["--json"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            return try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        }
        let product = try run([])
        XCTAssertEqual(Set(product.keys), ["stage1"])
        XCTAssertEqual(product["stage1"]?["tuning"] as? String, "soup norm-matched")
        XCTAssertNil(product["stage1"]?["tuning_validation"], "best-of-K's score belongs to the tunings' own rows")
        let every = try run(["--stage-seeds", "2"])
        XCTAssertEqual(every.count, 4)
        for k in ["identity_consistency", "prompt_fidelity", "per_attribute"] {
            XCTAssertEqual(product["stage1"]?[k] as? NSObject, every["stage1 soup 2 norm-matched"]?[k] as? NSObject, k)
        }
        XCTAssertEqual(try run(["--stage-seeds", "1"])["stage1"]?["tuning"] as? String, nil, "--stage-seeds 1: one tuning, as before")
        let text = try TroupeRun.run(eval)
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("stage methods: tuned 2 times (the model's lora_soup), each row their norm-matched soup"), text.stdout)
    }

    /// --oneactor-seeds K: each character's projector tuned K times on one cluster, a row for each
    /// tuning and for each soup of their offsets. (The soups' arithmetic:
    /// OneActorTests.testSoupOfAdaptersAveragesTheirOffsets.)
    func testEvalTunesOneActorSeveralTimesAndSoupsItsOffsets() throws {
        let (several, _) = try twoTuningsAndTheSecondAlone(methods: "oneactor", method: "oneactor", seedsFlag: "--oneactor-seeds", tuningArgs: ["--oneactor-steps", "2"])
        XCTAssertEqual(several.count, 4)
        XCTAssertNil(several["oneactor soup 2"]?["soup_norm_ratio"], "a LoRA soup's figure")
    }

    /// stages+oneactor: the stages and OneActor (its target the first accepted reference) tuned
    /// once per character and sampled at each `--v`; at v 0 there is no offset and cluster
    /// guidance is plain guidance, so its row is the plain stages' row on the same references.
    func testEvalSweepsVAndPairsStagesWithOneActor() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                                   "--seeds", "2", "--steps", "2", "--methods", "stages,stages+oneactor", "--stage-steps", "2", "--oneactor-steps", "2",
                                   "--v", "0,2", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["stages", "stages+oneactor v 0", "stages+oneactor v 2"])
        XCTAssertNil(methods["stages"]?["v"], "a method without an offset has no v")
        XCTAssertEqual(methods["stages+oneactor v 0"]?["v"] as? Double, 0)
        XCTAssertEqual(methods["stages+oneactor v 2"]?["v"] as? Double, 2)
        let plain = try XCTUnwrap(methods["stages"]), off = try XCTUnwrap(methods["stages+oneactor v 0"]), on = try XCTUnwrap(methods["stages+oneactor v 2"])
        for k in ["identity_consistency", "prompt_fidelity", "per_attribute"] {
            XCTAssertEqual(off[k] as? NSObject, plain[k] as? NSObject, "\(k): at v 0 the combination samples the plain stages")
        }
        XCTAssertEqual(on["cfg"] as? Double, plain["cfg"] as? Double, "sampled at the stage guidance, as generate --character does")
        let bad = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "oneactor", "--v", "0.5,x"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--v takes comma-separated finite numbers"), bad.stderr)
    }

    /// --reference-attention: tuned once, one row per scale for the tuned methods (their
    /// reference: the first accepted reference), none for prompt; out-of-range scales refused.
    func testEvalSweepsReferenceAttention() throws {
        let (dir, judge) = try evalProtocol(characters: "{\"name\": \"k\", \"prompt\": \"a knight\"}\n", prompts: "{} waving, smiling, in a forest, front view\n")
        let r = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--characters", dir + "/chars.jsonl", "--prompts", dir + "/prompts.txt",
                                   "--seeds", "2", "--steps", "2", "--methods", "prompt,stage1", "--stage-steps", "2", "--reference-attention", "0,1", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let methods = try XCTUnwrap(obj["methods"] as? [String: [String: Any]])
        XCTAssertEqual(Set(methods.keys), ["prompt", "stage1 ref 0", "stage1 ref 1"])
        XCTAssertNil(methods["prompt"]?["reference_attention"])
        XCTAssertEqual(methods["stage1 ref 0"]?["reference_attention"] as? Double, 0)
        XCTAssertEqual(methods["stage1 ref 1"]?["reference_attention"] as? Double, 1)
        let bad = try TroupeRun.run(["eval", "--model", JobTests.microModel, "--judge", judge, "--methods", "stage1", "--reference-attention", "0,1.5"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("--reference-attention scales must be in 0…1"), bad.stderr)
    }

    func testTrainDecoderStopsResumesAndExports() throws {
        let dir = tempDir()
        let judge = dir + "/judge.safetensors"
        try AttributeClassifier(seed: 5).save(to: judge, metadata: [:])
        let out = dir + "/dec"
        let missing = try TroupeRun.run(["train-decoder", "--out", out, "--judge", judge])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("needs --model"), missing.stderr)
        let first = try TroupeRun.run(["train-decoder", "--out", out, "--model", JobTests.microModel, "--judge", judge,
                                       "--steps", "3", "--batch", "2", "--stop-after", "2", "--json"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let a = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(a["step"] as? Int, 2)
        let second = try TroupeRun.run(["train-decoder", "--out", out, "--judge", judge, "--resume", "--json"])
        XCTAssertEqual(second.status, 0, second.stderr)
        let b = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(b["step"] as? Int, 3); XCTAssertEqual(b["steps_this_run"] as? Int, 1)
        let steps = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }.map { $0["step"] as! Int }
        XCTAssertEqual(steps, [1, 2, 3])

        // The tuned model's VAE, judged on renders and round trips.
        let r = try TroupeRun.run(["eval", "--model", out + "/model", "--judge", judge, "--methods", "reconstruction", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let rec = try XCTUnwrap(obj["reconstruction"] as? [String: Any])
        XCTAssertEqual(rec["n_images"] as? Int, 512)
        XCTAssertGreaterThan(try XCTUnwrap(rec["mse"] as? Double), 0)
        for key in ["original", "reconstructed"] {
            let acc = try XCTUnwrap(rec[key] as? [String: Double], key)
            XCTAssertEqual(Set(acc.keys), Set(WorldAttribute.allCases.map(\.rawValue)))
        }
        for key in ["latent_sensitivity", "latent_change"] {
            let values = try XCTUnwrap(rec[key] as? [String: Double], key)
            XCTAssertEqual(Set(values.keys), ["pose", "expression", "background", "view"], key)
            XCTAssertTrue(values.values.allSatisfy { $0 > 0 }, key)
        }
    }
}
