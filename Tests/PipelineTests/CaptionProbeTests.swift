// The caption probe of `train-base --caption-probe`: what it is asked to name for a World
// caption, its loss against a hand computation (two means — identity words, scene words — so the
// five always-present scene labels do not dilute the identity words), and a checkpoint holding
// the identity-only probe of older runs restores as "start fresh" rather than crashing.

import XCTest
@testable import Pipeline

final class CaptionProbeTests: XCTestCase {
    func testLabelsAreTheNamedIdentityWordsPlusTheSceneOfANonEmptyCaption() {
        let world = World(seed: 8)
        var sawEmpty = false, sawNamed = false
        for i in 0..<200 {
            let s = world.sample(i)
            let labels = CaptionProbe.labels(s)
            if s.caption.isEmpty {
                XCTAssertTrue(labels.isEmpty, "an empty caption names nothing")
                sawEmpty = true
                continue
            }
            let identity = Set(labels.keys.filter(\.isIdentity).map(\.rawValue))
            XCTAssertEqual(identity, Set(s.namedAttributes))
            for a in WorldAttribute.allCases where !a.isIdentity {
                XCTAssertEqual(labels[a], a.label(s.identity, s.scene), "\(a) of \(s.caption)")
            }
            sawNamed = sawNamed || !identity.isEmpty
        }
        XCTAssertTrue(sawEmpty && sawNamed)
        // Without context: exactly the identity words the caption spells out.
        for i in 0..<200 {
            let s = world.sample(i)
            XCTAssertEqual(Set(CaptionProbe.labels(s, context: false).keys.map(\.rawValue)), Set(s.namedAttributes), s.caption)
        }
    }

    func testLossIsTheIdentityMeanPlusTheSceneMean() throws {
        let width = 6, n = 5, end = 99
        let probe = try CaptionProbe(width: width, seed: 3, learningRate: 1e-3)
        var r = SplitMixRandom(seed: 11)
        let values = (0..<(2 * n * width)).map { _ in r.nextFloat() * 2 - 1 }
        let context = Tensor(values, shape: [2, n, width])
        let ids = [[1, 2, end, 0, 0], [1, end, 0, 0, 0]]
        let named: [[WorldAttribute: Int]] = [[.hairColor: 3, .accessory: 1, .expression: 4, .view: 1],
                                              [.eyeColor: 2, .expression: 0]]
        let got = try XCTUnwrap(probe.loss(context: context, ids: ids, named: named, endToken: end)).item()

        let w = probe.linear.weight.tensor.toArray(), b = probe.linear.bias!.toArray()
        let outs = b.count
        func logits(_ row: Int) -> [Float] {
            let start = ids[row].firstIndex(of: end)!
            var summary = [Float](repeating: 0, count: width)
            for p in start..<n { for k in 0..<width { summary[k] += values[(row * n + p) * width + k] / Float(n - start) } }
            return (0..<outs).map { o in b[o] + (0..<width).reduce(0) { $0 + w[o * width + $1] * summary[$1] } }
        }
        func ce(_ row: Int, _ a: WorldAttribute, _ label: Int) -> Float {
            let i = CaptionProbe.attributes.firstIndex(of: a)!
            let slice = Array(logits(row)[CaptionProbe.offsets[i]..<CaptionProbe.offsets[i + 1]])
            let m = slice.max()!
            return log(slice.reduce(0) { $0 + exp($1 - m) }) + m - slice[label]
        }
        var identity: [Float] = [], scene: [Float] = []
        for (row, labels) in named.enumerated() {
            for (a, label) in labels { a.isIdentity ? identity.append(ce(row, a, label)) : scene.append(ce(row, a, label)) }
        }
        let expected = identity.reduce(0, +) / Float(identity.count) + scene.reduce(0, +) / Float(scene.count)
        XCTAssertEqual(got, expected, accuracy: 1e-5)
        XCTAssertNil(probe.loss(context: context, ids: ids, named: [[:], [:]], endToken: end))
    }

    func testAnIdentityOnlyProbeCheckpointStartsTheProbeFresh() throws {
        let probe = try CaptionProbe(width: 4, seed: 1, learningRate: 1e-3)
        let path = NSTemporaryDirectory() + "probe-\(UUID().uuidString).safetensors"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        let identityClasses = WorldAttribute.identity.map(\.classes).reduce(0, +)
        try SafetensorsWriter.write(["probe.weight": Tensor(zeros: [identityClasses, 4]), "probe.bias": Tensor(zeros: [identityClasses])], to: path)
        let before = probe.linear.weight.tensor.toArray()
        XCTAssertFalse(try probe.restore(from: SafetensorsFile(path: path)))
        XCTAssertEqual(probe.linear.weight.tensor.toArray(), before)
    }
}
