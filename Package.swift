// swift-tools-version:6.0
import PackageDescription

// One target per layer of the system; each depends only on the ones above it.
let package = Package(
    name: "Nebula",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "NebulaTensor", targets: ["NebulaTensor"]),
        .library(name: "NebulaNN", targets: ["NebulaNN"]),
        .library(name: "NebulaText", targets: ["NebulaText"]),
        .library(name: "NebulaModels", targets: ["NebulaModels"]),
        .library(name: "NebulaDiffusion", targets: ["NebulaDiffusion"]),
        .library(name: "NebulaEval", targets: ["NebulaEval"]),
        .executable(name: "nebula", targets: ["nebula"]),
        .executable(name: "nebula-bench", targets: ["NebulaBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // BLAS: OpenBLAS through pkg-config on Linux (oneDNN, when installed, is loaded at run time), Accelerate on macOS.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "NebulaTensor",
            dependencies: [.target(name: "CBLAS", condition: .when(platforms: [.linux]))]
        ),
        .target(name: "NebulaNN", dependencies: ["NebulaTensor"]),
        .target(name: "NebulaText"),
        .target(name: "NebulaModels", dependencies: ["NebulaNN", "NebulaText"]),
        .target(name: "NebulaDiffusion", dependencies: ["NebulaModels"]),
        .target(name: "NebulaEval", dependencies: ["NebulaDiffusion"]),
        .executableTarget(
            name: "nebula",
            dependencies: [
                "NebulaEval",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "NebulaBench",
            dependencies: [
                "NebulaModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "NebulaTensorTests", dependencies: ["NebulaTensor", "NebulaNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaNNTests", dependencies: ["NebulaNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaTextTests", dependencies: ["NebulaText"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaModelsTests", dependencies: ["NebulaModels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaDiffusionTests", dependencies: ["NebulaDiffusion"]),
        .testTarget(name: "NebulaEvalTests", dependencies: ["NebulaEval"], resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v5]
)
