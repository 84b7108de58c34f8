import XCTest
import NebulaTensor
@testable import NebulaNN

final class CheckpointTests: XCTestCase {
    final class Net: Module {
        let fc: Linear, norm: LayerNorm
        init(width: Int, generator: inout SeededGenerator) {
            fc = Linear(width, width, generator: &generator)
            norm = LayerNorm(width)
        }
    }

    var directory: URL!
    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: directory) }

    func testSaveAndLoadRoundTrip() throws {
        var rng = SeededGenerator(seed: 1)
        let a = Net(width: 4, generator: &rng), b = Net(width: 4, generator: &rng)
        let url = directory.appendingPathComponent("net.safetensors")
        try a.save(safetensors: url, metadata: ["format": "pt"])
        try b.load(safetensors: url)
        for ((n1, p1), (n2, p2)) in zip(a.namedParameters(), b.namedParameters()) {
            XCTAssertEqual(n1, n2)
            XCTAssertEqual(p1.data, p2.data)
        }
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).metadata["format"], "pt")
    }

    func testMismatchNamesEveryProblemAndChangesNothing() throws {
        var rng = SeededGenerator(seed: 2)
        let small = Net(width: 4, generator: &rng)
        let url = directory.appendingPathComponent("other.safetensors")
        var entries = small.safetensorsEntries().filter { $0.name != "norm.bias" }
        entries.append(SafeTensorsEntry(name: "extra.weight", shape: [1], floats: [0]))
        entries[0] = SafeTensorsEntry(name: "fc.weight", shape: [2, 8], floats: [Float](repeating: 0, count: 16))
        try writeSafeTensors(entries, to: url)
        let target = Net(width: 4, generator: &rng)
        let before = target.fc.bias!.data
        XCTAssertThrowsError(try target.load(safetensors: url)) { error in
            let mismatch = error as! CheckpointMismatch
            XCTAssertEqual(mismatch.missing, ["norm.bias"])
            XCTAssertEqual(mismatch.unexpected, ["extra.weight"])
            XCTAssertEqual(mismatch.shapeMismatches.map(\.name), ["fc.weight"])
            let line = mismatch.localizedDescription
            XCTAssertFalse(line.contains("\n"))
            XCTAssertTrue(line.contains("norm.bias") && line.contains("extra.weight") && line.contains("[4, 4]"), line)
        }
        XCTAssertEqual(target.fc.bias!.data, before, "a failed load leaves the module untouched")
    }

    func testPrefixedAndHalfPrecision() throws {
        var rng = SeededGenerator(seed: 3)
        let a = Net(width: 3, generator: &rng), b = Net(width: 3, generator: &rng)
        let url = directory.appendingPathComponent("half.safetensors")
        try writeSafeTensors(a.safetensorsEntries(prefix: "lm.", dtype: .f16), to: url)
        try b.load(safetensors: url, prefix: "lm.")
        for (p1, p2) in zip(a.parameters(), b.parameters()) {
            for (x, y) in zip(p1.data, p2.data) { XCTAssertEqual(x, y, accuracy: abs(x) / 1000 + 1e-7) }
        }
    }
}
