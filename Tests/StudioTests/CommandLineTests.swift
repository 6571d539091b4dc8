import XCTest
@testable import Studio

final class CommandLineTests: XCTestCase {
    func testBenchKernelsParsesItsFlags() throws {
        let cmd = try Troupe.parseAsRoot(["bench", "kernels", "--json", "--seconds", "0.1"])
        let bench = try XCTUnwrap(cmd as? BenchKernels)
        XCTAssertTrue(bench.json)
        XCTAssertEqual(bench.seconds, 0.1)
    }

    func testUnknownSubcommandIsAUsageError() {
        XCTAssertThrowsError(try Troupe.parseAsRoot(["no-such-command"]))
    }
}
