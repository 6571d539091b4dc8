// `troupe bench tune --preset mini`: every method's job runs as `tune` runs it (a few steps
// here; the timing itself is the benchmark's business, never a test's). The stage methods had
// stopped at "the summary offset needs the character's base word" once troupe-mini recommended
// a summary offset, and nothing ran them.

import Foundation
import XCTest

final class BenchTuneCommandTests: XCTestCase {
    func testEveryMethodRunsOnTheEmbeddedModel() throws {
        for (method, steps) in [("oneactor", 2), ("stage1", 3), ("stage3", 2)] {
            let r = try TroupeRun.run(["bench", "tune", "--preset", "mini", "--method", method, "--steps", String(steps), "--json"])
            XCTAssertEqual(r.status, 0, "\(method): \(r.stderr)")
            let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(method): \(r.stdout)")
            XCTAssertEqual(obj["steps"] as? Int, steps, method)
            XCTAssertGreaterThan(obj["tune_seconds"] as? Double ?? 0, 0, method)
            XCTAssertEqual(obj["method"] as? String, method)
        }
    }

    func testBadOptionsAreRefusedBeforeAnythingRuns() throws {
        for (args, message) in [(["--method", "stage4"], "--method must be"), (["--steps", "0"], "--steps must be at least 1"),
                                (["--preset", "sd15", "--steps", "2"], "--steps times --preset mini")] {
            let r = try TroupeRun.run(["bench", "tune"] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
