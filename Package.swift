// swift-tools-version:6.0
import Foundation
import PackageDescription

// One target per layer of the system. Each declares exactly the targets it imports, so this graph is the real one:
//
//   NebulaCore ← NebulaTensor ← NebulaNN ← NebulaModels ← NebulaDiffusion ← NebulaServe ← nebula
//        └──── NebulaText ←──────────────────┘                      └─ NebulaEval ───────┘
//
// NebulaCore holds what every layer shares (the seeded generators, the stable hash, the worker pool and the
// execution context, safetensors and JSON, half precision, durable files); NebulaTensor re-exports it, so a
// layer above the engine reaches it through its NebulaTensor import.
let package = Package(
    name: "Nebula",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NebulaCore", targets: ["NebulaCore"]),
        .library(name: "NebulaTensor", targets: ["NebulaTensor"]),
        .library(name: "NebulaNN", targets: ["NebulaNN"]),
        .library(name: "NebulaText", targets: ["NebulaText"]),
        .library(name: "NebulaModels", targets: ["NebulaModels"]),
        .library(name: "NebulaDiffusion", targets: ["NebulaDiffusion"]),
        .library(name: "NebulaEval", targets: ["NebulaEval"]),
        .library(name: "NebulaServe", targets: ["NebulaServe"]),
        .executable(name: "nebula", targets: ["nebula"]),
        .executable(name: "nebula-bench", targets: ["NebulaBench"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.14.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // `swift package generate-documentation` (`make docs`): the DocC catalogs in Sources/*/*.docc. A plugin only:
        // nothing of it is built into Nebula.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0")
    ],
    targets: [
        // BLAS: OpenBLAS through pkg-config on Linux (oneDNN, when installed, is loaded at run time), Accelerate on macOS.
        .systemLibrary(
            name: "CBLAS",
            path: "Sources/CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(name: "NebulaCore"),
        .target(
            name: "NebulaTensor",
            dependencies: ["NebulaCore", .target(name: "CBLAS", condition: .when(platforms: [.linux]))]
        ),
        .target(name: "NebulaNN", dependencies: ["NebulaTensor"]),
        .target(name: "NebulaText", dependencies: ["NebulaCore"]),
        .target(name: "NebulaModels", dependencies: ["NebulaTensor", "NebulaNN", "NebulaText"]),
        .target(name: "NebulaDiffusion", dependencies: ["NebulaTensor", "NebulaNN", "NebulaModels"]),
        .target(name: "NebulaEval", dependencies: ["NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion"]),
        // The HTTP server (`nebula serve`): an OpenAI-compatible API over the LM and the diffusion system.
        .target(
            name: "NebulaServe",
            dependencies: [
                "NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio")
            ]
        ),
        .executableTarget(
            name: "nebula",
            dependencies: [
                "NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion", "NebulaEval", "NebulaServe",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .executableTarget(
            name: "NebulaBench",
            dependencies: [
                "NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]
        ),
        .testTarget(name: "NebulaCoreTests", dependencies: ["NebulaCore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaTensorTests", dependencies: ["NebulaTensor", "NebulaNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "NebulaNNTests", dependencies: ["NebulaTensor", "NebulaNN"]),
        .testTarget(name: "NebulaTextTests", dependencies: ["NebulaCore", "NebulaText"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "NebulaModelsTests", dependencies: ["NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "NebulaDiffusionTests", dependencies: ["NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion"]
        ),
        .testTarget(
            name: "NebulaEvalTests",
            dependencies: ["NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels", "NebulaDiffusion", "NebulaEval"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "NebulaServeTests",
            dependencies: [
                "NebulaServe", "NebulaDiffusion", "NebulaModels", "NebulaNN", "NebulaText", "NebulaTensor",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio")
            ]
        )
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer targets (`make fuzz`): built only when NEBULA_FUZZ is set, with -sanitize=fuzzer,address, since
// libFuzzer supplies the program's main.
if ProcessInfo.processInfo.environment["NEBULA_FUZZ"] != nil {
    package.products.append(.executable(name: "nebula-fuzz", targets: ["NebulaFuzz"]))
    package.targets.append(
        .executableTarget(
            name: "NebulaFuzz",
            dependencies: ["NebulaTensor", "NebulaNN", "NebulaText", "NebulaModels"],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ))
}

// Data-parallel training on MPI (`make build-mpi`): Open MPI through a C module map, and `nebula` linked with it,
// only when NEBULA_MPI is set, so the default build and `make test` need no MPI.
if ProcessInfo.processInfo.environment["NEBULA_MPI"] != nil {
    package.targets.append(.systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]))
    package.targets.append(.target(name: "NebulaMPI", dependencies: ["CMPI", "NebulaNN"]))
    package.targets.first { $0.name == "nebula" }!.dependencies.append("NebulaMPI")
}
