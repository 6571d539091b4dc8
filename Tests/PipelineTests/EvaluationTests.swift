// The consistency metrics on readings whose answers are known, and the built-in protocol's
// prompts parsed into the context attributes they name.

import XCTest
@testable import Pipeline

final class EvaluationTests: XCTestCase {
    func reading(_ id: CharacterIdentity, _ s: SceneContext) -> [WorldAttribute: Int] {
        Dictionary(uniqueKeysWithValues: WorldAttribute.allCases.map { ($0, $0.label(id, s)) })
    }

    func testBuiltInPromptsNameFourContextAttributes() throws {
        for t in EvalProtocol.prompts {
            let p = try EvalPrompt(template: t)
            XCTAssertEqual(Set(p.expected.keys), [.pose, .expression, .background, .view], t)
        }
        let p = try EvalPrompt(template: "{} with arms raised, surprised, on a beach, side view")
        XCTAssertEqual(p.expected[.pose], Pose.armsUp.rawValue)
        XCTAssertEqual(p.expected[.expression], Expression.surprised.rawValue)
        XCTAssertEqual(p.expected[.background], Background.beach.rawValue)
        XCTAssertEqual(p.expected[.view], View.side.rawValue)
        XCTAssertEqual(p.text(for: EvalCharacter(name: "k", prompt: "a knight")), "a knight with arms raised, surprised, on a beach, side view")
        XCTAssertThrowsError(try EvalPrompt(template: "no placeholder"))
    }

    func testPerfectReadingsScoreOneAndDriftScoresLow() throws {
        let world = World(seed: 3)
        let prompts = try EvalProtocol.prompts.map { try EvalPrompt(template: $0) }
        func scene(_ p: EvalPrompt) -> SceneContext {
            SceneContext(pose: Pose(rawValue: p.expected[.pose]!)!, expression: Expression(rawValue: p.expected[.expression]!)!,
                         background: Background(rawValue: p.expected[.background]!)!, view: View(rawValue: p.expected[.view]!)!)
        }
        // Consistent: each character keeps one identity in every image, and every prompt is followed.
        var samples: [ConsistencyEvaluator.Sample] = [], readings: [[WorldAttribute: Int]] = []
        for c in 0..<3 {
            let id = world.sample(c).identity
            for p in prompts { for _ in 0..<2 {
                samples.append(.init(character: c, prompt: p, pixels: []))
                readings.append(reading(id, scene(p)))
            } }
        }
        let perfect = ConsistencyEvaluator.score(samples, predictions: readings)
        XCTAssertEqual(perfect.identityConsistency, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.promptFidelity, 1, accuracy: 1e-12)
        XCTAssertEqual(perfect.images, 36)

        // Drifting: a fresh random identity per image; prompts followed half the time (view wrong).
        var drift: [[WorldAttribute: Int]] = []
        for (i, s) in samples.enumerated() {
            var sc = scene(s.prompt)
            if i % 2 == 1 { sc.view = sc.view == .front ? .side : .front }
            drift.append(reading(world.sample(1000 + i).identity, sc))
        }
        let drifting = ConsistencyEvaluator.score(samples, predictions: drift)
        XCTAssertLessThan(drifting.identityConsistency, 0.35)
        XCTAssertEqual(drifting.promptFidelity, 0.875, accuracy: 1e-12)   // 3 of 4 attributes on half the images
        XCTAssertEqual(drifting.perAttribute["context_view"]!, 0.5, accuracy: 1e-12)

        // Per character: only character 1 drifts; the others read perfect, and the pooled score
        // sits between.
        let mixed = samples.indices.map { samples[$0].character == 1 ? drift[$0] : readings[$0] }
        let scores = ConsistencyEvaluator.score(samples, predictions: mixed)
        XCTAssertEqual(Set(scores.perCharacter.keys), [0, 1, 2])
        for c in [0, 2] {
            XCTAssertEqual(scores.perCharacter[c]!.identityConsistency, 1, accuracy: 1e-12)
            XCTAssertEqual(scores.perCharacter[c]!.promptFidelity, 1, accuracy: 1e-12)
            XCTAssertEqual(scores.perCharacter[c]!.images, 12)
        }
        XCTAssertLessThan(scores.perCharacter[1]!.identityConsistency, 0.5)
        XCTAssertEqual(scores.perCharacter[1]!.promptFidelity, 0.875, accuracy: 1e-12)
        XCTAssertEqual(scores.promptFidelity, (1 + 1 + 0.875) / 3, accuracy: 1e-12)
        XCTAssertTrue(scores.perCharacter[1]!.perCharacter.isEmpty)

        // Per prompt: the first prompt's images of every character drift (a fresh identity),
        // the rest keep theirs: its cross-prompt pairs agree at about chance, another prompt's
        // fully but for its pairs with the first.
        let first = prompts[0].template
        let onePromptDrifts = samples.indices.map { samples[$0].prompt.template == first ? reading(world.sample(2000 + $0).identity, scene(samples[$0].prompt)) : readings[$0] }
        let byPrompt = ConsistencyEvaluator.score(samples, predictions: onePromptDrifts).perPrompt
        XCTAssertEqual(Set(byPrompt.keys), Set(prompts.map(\.template)))
        XCTAssertLessThan(byPrompt[first]!.crossPromptConsistency, 0.4)
        XCTAssertLessThan(byPrompt[first]!.withinPromptConsistency, 0.5)   // fresh identities from seed to seed
        for p in prompts.dropFirst() {
            // 4 of its 5 partner prompts agree fully, the drifting one at about chance; its own
            // images agree with each other fully.
            XCTAssertTrue((0.8..<1).contains(byPrompt[p.template]!.crossPromptConsistency), "\(byPrompt[p.template]!)")
            XCTAssertEqual(byPrompt[p.template]!.withinPromptConsistency, 1, accuracy: 1e-12)
            XCTAssertEqual(byPrompt[p.template]!.promptFidelity, 1, accuracy: 1e-12)
        }
    }

    /// Identity fidelity counts the named attributes the judge sees; unnamed consistency looks
    /// only at the attributes the prompt leaves out.
    func testIdentityFidelityAndUnnamedConsistency() throws {
        let world = World(seed: 5)
        let p = try EvalPrompt(template: "{}, standing, calm, under a blue sky, front view")
        let scene = SceneContext(pose: .standing, expression: .neutral, background: .sky, view: .front)
        let character = EvalCharacter(name: "k", prompt: "a red-haired knight wearing glasses")
        XCTAssertEqual(character.namedIdentity, [.hairColor: HairColor.red.rawValue, .accessory: Accessory.glasses.rawValue])
        var samples: [ConsistencyEvaluator.Sample] = [], readings: [[WorldAttribute: Int]] = []
        for i in 0..<4 {
            // Red hair always; glasses in half the images; everything else drifts.
            var id = world.sample(100 + i).identity
            id.hairColor = .red
            id.accessory = i % 2 == 0 ? .glasses : .scarf
            samples.append(.init(character: 0, prompt: p, pixels: [], namedIdentity: character.namedIdentity))
            readings.append(reading(id, scene))
        }
        let s = ConsistencyEvaluator.score(samples, predictions: readings)
        XCTAssertEqual(s.identityFidelity!, 0.75, accuracy: 1e-12)
        XCTAssertEqual(s.perAttribute["fidelity_hair_color"]!, 1, accuracy: 1e-12)
        XCTAssertEqual(s.perAttribute["fidelity_accessory"]!, 0.5, accuracy: 1e-12)
        XCTAssertLessThan(s.unnamedConsistency!, s.identityConsistency)
        // Without named attributes there is no fidelity to report.
        let plain = ConsistencyEvaluator.score(samples.map { .init(character: $0.character, prompt: $0.prompt, pixels: []) }, predictions: readings)
        XCTAssertNil(plain.identityFidelity)
        XCTAssertEqual(plain.unnamedConsistency!, plain.identityConsistency, accuracy: 1e-12)
    }

    /// The prompt-engineering character keeps what the prompt names, is fixed per name, and
    /// spells out every attribute.
    func testClassOnlyCharacterIsTheBaseWordAlone() throws {
        XCTAssertEqual(try EvalCharacter(name: "r", prompt: "a cowboy dressed in orange").classOnly().prompt, "a cowboy")
        XCTAssertEqual(try EvalCharacter(name: "a", prompt: "a red-haired astronaut").classOnly().prompt, "an astronaut")
        let custom = try EvalCharacter(name: "b", prompt: "a knight called Bob", baseWord: "Bob").classOnly()
        XCTAssertEqual(custom.prompt, "a Bob"); XCTAssertEqual(custom.baseWord, "Bob")
        XCTAssertTrue(try EvalCharacter(name: "b", prompt: "a knight").classOnly().namedIdentity.isEmpty)
    }

    func testSpelledOutCharacterKeepsItsNamedAttributes() {
        let c = EvalCharacter(name: "pirate", prompt: "a pirate with blonde hair")
        let full = c.fullIdentity
        XCTAssertEqual(full.characterClass, .pirate)
        XCTAssertEqual(full.hairColor, .blonde)
        XCTAssertNotEqual(full.hairStyle, .bald)
        XCTAssertNotEqual(full.accessory, .none)
        XCTAssertEqual(c.spelledOut, c.spelledOut)
        XCTAssertEqual(c.spelledOut.namedIdentity.count, 7, c.spelledOut.prompt)
        XCTAssertTrue(c.spelledOut.prompt.hasPrefix("a pirate with "), c.spelledOut.prompt)
    }
}
