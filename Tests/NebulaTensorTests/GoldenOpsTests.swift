import Foundation
import XCTest
import NebulaNN
@testable import NebulaTensor

/// Fused ops against PyTorch (float64 reference, stored as F32): `reference/golden_ops.py`.
final class GoldenOpsTests: XCTestCase {
    var file: SafeTensorsFile!

    override func setUpWithError() throws {
        let url = Bundle.module.url(forResource: "ops_golden", withExtension: "safetensors", subdirectory: "Fixtures")!
        file = try SafeTensorsFile(contentsOf: url)
    }

    func t(_ name: String) throws -> Tensor { try file.tensor(name) }

    /// Runs `op` on the named inputs, backpropagates the stored upstream gradient, and compares the output
    /// and every input gradient with PyTorch's.
    func check(_ prefix: String, inputs names: [String], tolerance: Float = 1e-5, _ op: ([Tensor]) -> Tensor) throws {
        let inputs = try names.map { try t("\(prefix).\($0)").requiringGrad() }
        let out = op(inputs)
        try assertClose(out.data, t("\(prefix).out").data, tolerance, "\(prefix).out")
        out.backward(seed: try t("\(prefix).upstream").data)
        for (name, input) in zip(names, inputs) where file.info("\(prefix).grad.\(name)") != nil {
            try assertClose(input.gradData!, t("\(prefix).grad.\(name)").data, tolerance, "\(prefix).grad.\(name)")
        }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String) throws {
        XCTAssertEqual(a.count, b.count, what)
        let error = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(error, tolerance, "\(what): max error \(error)")
    }

    func testNorms() throws {
        try check("layer_norm", inputs: ["x", "weight", "bias"]) { layerNorm($0[0], weight: $0[1], bias: $0[2], eps: 1e-5) }
        try check("rms_norm", inputs: ["x", "weight"]) { rmsNorm($0[0], weight: $0[1], eps: 1e-6) }
    }

    func testActivations() throws {
        try check("gelu", inputs: ["x"]) { $0[0].gelu() }
        try check("gelu_exact", inputs: ["x"]) { $0[0].exactGELU() }
        try check("silu", inputs: ["x"]) { $0[0].silu() }
        try check("softmax", inputs: ["x"]) { $0[0].softmax() }
        try check("log_softmax", inputs: ["x"]) { $0[0].logSoftmax() }
    }

    func testCrossEntropy() throws {
        let targets = try file.integers("cross_entropy.targets").map(Int32.init)
        XCTAssertTrue(targets.contains(-1), "the fixture exercises the ignore index")
        try check("cross_entropy", inputs: ["logits"]) { crossEntropy($0[0], targets: targets) }
    }

    func testAttention() throws {
        try check("attention_causal", inputs: ["q", "k", "v"]) {
            scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, causal: true)
        }
        let mask = try t("attention_cross_masked.mask").data
        try check("attention_cross_masked", inputs: ["q", "k", "v"]) {
            scaledDotProductAttention(query: $0[0], key: $0[1], value: $0[2], heads: 2, keyMask: mask)
        }
    }

    func testBatchedMatmul() throws {
        try check("matmul_batched", inputs: ["a", "b"]) { $0[0].matmul($0[1]) }
    }
}
