// swift-tools-version:6.0
// Troupe: a terminal studio for consistent characters with latent diffusion models.
// Module map and dependency direction: ../shared/design.md §1.
import PackageDescription

// Release builds target Haswell (AVX2 + FMA, every machine this project runs on) so
// SIMD8<Float> hot loops become single AVX instructions instead of SSE2 pairs and libm calls.
#if arch(x86_64)
let cpuFlags = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif
let optimise: [SwiftSetting] = [.unsafeFlags(["-O", "-wmo"] + cpuFlags, .when(configuration: .release))]
// The engine is optimised in debug builds too (preconditions kept): the test suite trains
// micro models, and unoptimised kernels would make it minutes slower.
let optimiseDebug: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Troupe",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "troupe", targets: ["Studio"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Preview", targets: ["Preview"]),
        .library(name: "TUI", targets: ["TUI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNcurses", pkgConfig: "ncursesw",
                       providers: [.apt(["libncursesw5-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CSixel", pkgConfig: "libsixel",
                       providers: [.apt(["libsixel-dev"])]),
        .target(name: "FileSafety"),
        .target(name: "Pipeline", dependencies: ["CBLAS", "FileSafety"], swiftSettings: optimise + optimiseDebug),
        .target(name: "CPNGSupport", dependencies: ["CPNG"]),
        .target(name: "Preview", dependencies: ["CPNG", "CPNGSupport", "CSixel", "FileSafety"], swiftSettings: optimise),
        .target(name: "TUI", dependencies: ["CNcurses"]),
        .executableTarget(
            name: "Studio",
            dependencies: [
                "Pipeline", "Preview", "TUI", "FileSafety",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimise),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PreviewTests", dependencies: ["Preview"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TUITests", dependencies: ["TUI"]),
        .testTarget(name: "StudioTests", dependencies: ["Studio", "Preview", "Pipeline"]),
    ],
    swiftLanguageModes: [.v5]
)
