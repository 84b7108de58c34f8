import Foundation
import XCTest
@testable import NebulaCore

final class SafeTensorsTests: XCTestCase {
    // MARK: Helpers

    /// A safetensors file from a header text and data bytes; `declaredLength` overrides the prefix.
    private func file(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        let headerBytes = Array(header.utf8)
        return file(headerBytes: headerBytes, data: data, declaredLength: declaredLength)
    }

    private func file(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        var result = Data(bytes: &length, count: 8)
        result.append(contentsOf: headerBytes)
        result.append(contentsOf: data)
        return result
    }

    /// Asserts that opening `data` fails with `kind`, and that the message is one line with the
    /// source name (and an offset, when `offset` is given).
    private func assertRejects(
        _ data: Data, _ kind: SafeTensorsError.Kind, offset: Int? = nil, mentioning text: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try SafeTensorsFile(data: data, source: "bad.safetensors")
            XCTFail("expected \(kind), but the file was accepted", file: file, line: line)
        } catch let error as SafeTensorsError {
            XCTAssertEqual(error.kind, kind, "\(error.localizedDescription)", file: file, line: line)
            let description = error.localizedDescription
            XCTAssertTrue(description.hasPrefix("bad.safetensors: "), description, file: file, line: line)
            XCTAssertFalse(description.contains("\n"), description, file: file, line: line)
            XCTAssertTrue(description.contains("expected"), description, file: file, line: line)
            if let offset { XCTAssertEqual(error.offset, offset, description, file: file, line: line) }
            if let text { XCTAssertTrue(description.contains(text), description, file: file, line: line) }
        } catch {
            XCTFail("expected SafeTensorsError, got \(error)", file: file, line: line)
        }
    }

    private func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nebula-st-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// A small valid file made by the writer: two float tensors and an integer one.
    private func smallValidFile() throws -> Data {
        let url = try temporaryDirectory().appendingPathComponent("small.safetensors")
        try writeSafeTensors(
            [
                SafeTensorsEntry(name: "w", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                SafeTensorsEntry(name: "b", shape: [3], floats: [0.5, -0.5, 1], dtype: .f16),
                SafeTensorsEntry(name: "ids", shape: [2], integers: [7, -7], dtype: .i32)
            ], metadata: ["k": "v"], to: url)
        return try Data(contentsOf: url)
    }

    private func bitsEqual(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), file: file, line: line)
    }

    // MARK: The PyTorch-made fixture

    func testReadsFileWrittenByPythonSafetensors() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/reference", withExtension: "safetensors"))
        let st = try SafeTensorsFile(contentsOf: url)

        XCTAssertEqual(st.metadata, ["format": "pt", "note": "ünïcode ✓", "escapes": "a\"b\\c\nd\te"])
        XCTAssertEqual(
            Set(st.tensors.map(\.name)),
            ["f32", "f16", "bf16", "rounding_source", "i64", "i32", "scalar", "empty", "blocks.0.attn.qkv.weight"])
        XCTAssertEqual(st.tensors.map(\.byteRange.lowerBound), st.tensors.map(\.byteRange.lowerBound).sorted())

        let f32 = try st.floats("f32")
        XCTAssertEqual(st.info("f32")?.shape, [3, 3])
        bitsEqual(Array(f32[0..<8]), [0, -0.0, 1.5, -2.25, .greatestFiniteMagnitude, .leastNonzeroMagnitude, .infinity, -.infinity])
        XCTAssertTrue(f32[8].isNaN)

        XCTAssertEqual(try st.integers("i64"), [Int.min, Int.max, 0, -1])
        XCTAssertEqual(try st.integers("i32"), [Int(Int32.min), Int(Int32.max), 7])
        XCTAssertEqual(st.info("scalar")?.shape, [])
        XCTAssertEqual(st.info("scalar")?.elementCount, 1)
        XCTAssertEqual(try st.floats("scalar"), [42])
        XCTAssertEqual(st.info("empty")?.shape, [0, 4])
        XCTAssertEqual(try st.floats("empty"), [])
        XCTAssertEqual(try st.floats("blocks.0.attn.qkv.weight"), (0..<24).map { Float($0) / 8 })
        XCTAssertEqual(st.info("blocks.0.attn.qkv.weight")?.dtype, .f32)
    }

    /// PyTorch rounded `rounding_source` to F16 and BF16; Nebula's conversions must give the same bits.
    func testHalfAndBFloat16RoundingMatchPyTorch() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "Fixtures/reference", withExtension: "safetensors"))
        let st = try SafeTensorsFile(contentsOf: url)
        let source = try st.floats("rounding_source")
        let f16 = try st.floats("f16")
        let bf16 = try st.floats("bf16")
        XCTAssertEqual(source.count, 1019)
        for (i, value) in source.enumerated() {
            if value.isNaN {
                XCTAssertTrue(f16[i].isNaN && bf16[i].isNaN)
                continue
            }
            XCTAssertEqual(halfFromFloat(value), halfFromFloat(f16[i]), "F16 of \(value)")
            XCTAssertEqual(floatFromHalf(halfFromFloat(value)).bitPattern, f16[i].bitPattern, "F16 of \(value)")
            XCTAssertEqual(floatFromBFloat16(bfloat16FromFloat(value)).bitPattern, bf16[i].bitPattern, "BF16 of \(value)")
        }
    }

    // MARK: Conversions

    func testEveryHalfSurvivesARoundTripThroughFloat() {
        for bits in UInt16.min...UInt16.max {
            let value = floatFromHalf(bits)
            let back = halfFromFloat(value)
            if bits & 0x7C00 == 0x7C00 && bits & 0x3FF != 0 {
                XCTAssertTrue(value.isNaN)
                XCTAssertTrue(back & 0x7C00 == 0x7C00 && back & 0x3FF != 0, "NaN \(bits) became \(back)")
            } else {
                XCTAssertEqual(back, bits)
            }
            #if !(os(macOS) && arch(x86_64))
                if !value.isNaN { XCTAssertEqual(value.bitPattern, Float(Float16(bitPattern: bits)).bitPattern) }
            #endif
        }
    }

    #if !(os(macOS) && arch(x86_64))
        /// Swift's own `Float16(_: Float)` rounds to nearest even; compare on many random floats.
        func testHalfFromFloatMatchesSwiftFloat16() {
            var random = SplitMix64(seed: 16)
            for _ in 0..<200_000 {
                let value = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
                if value.isNaN {
                    XCTAssertTrue(floatFromHalf(halfFromFloat(value)).isNaN)
                } else {
                    XCTAssertEqual(halfFromFloat(value), Float16(value).bitPattern, "\(value)")
                }
            }
        }
    #endif

    func testHalfEdgeValues() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3C00), (-2, 0xC000), (0, 0x0000), (-0.0, 0x8000), (1.0 / 3, 0x3555),
            (65504, 0x7BFF), (65519.99, 0x7BFF), (65520, 0x7C00), (1e6, 0x7C00), (-1e6, 0xFC00),
            (.infinity, 0x7C00), (-.infinity, 0xFC00),
            (0x1p-14, 0x0400),  // smallest normal
            (0x1p-24, 0x0001),  // smallest subnormal
            (0x1.8p-24, 0x0002),  // tie between 1 and 2 steps → even (2)
            (0x1.4p-23, 0x0002),  // 2.5 steps → even (2)
            (0x1p-25, 0x0000),  // tie between 0 and 1 step → even (0)
            (Float(0x1p-25).nextUp, 0x0001),  // just above the tie
            (-0x1p-26, 0x8000),  // underflow keeps the sign
            (0x1.ff8p-15, 0x03FF),  // largest subnormal
            (0x1.ffcp-15, 0x0400),  // tie above it rounds (to even) into the smallest normal
            (1 + 0x1p-11, 0x3C00),  // tie → even mantissa
            (1 + 0x3p-11, 0x3C02),  // tie → even mantissa (up)
            (.leastNonzeroMagnitude, 0x0000)
        ]
        for (value, bits) in cases {
            XCTAssertEqual(halfFromFloat(value), bits, "\(value)")
        }
        XCTAssertEqual(floatFromHalf(0x0001), 0x1p-24)
        XCTAssertEqual(floatFromHalf(0x03FF), 1023 * 0x1p-24)
        XCTAssertEqual(floatFromHalf(0x8001), -0x1p-24)
        XCTAssertEqual(floatFromHalf(0x8000).bitPattern, Float(-0.0).bitPattern)
        XCTAssertEqual(floatFromHalf(0x7BFF), 65504)
        XCTAssertEqual(floatFromHalf(0xFC00), -.infinity)
        XCTAssertTrue(floatFromHalf(0x7E00).isNaN)
        XCTAssertTrue(floatFromHalf(0x7C01).isNaN)
        let signalingNaN = Float(bitPattern: 0x7F80_0001)  // payload only in bits a half cannot hold
        XCTAssertTrue(floatFromHalf(halfFromFloat(signalingNaN)).isNaN)
    }

    func testBFloat16EdgeValues() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3F80), (-2, 0xC000), (-0.0, 0x8000), (.infinity, 0x7F80), (-.infinity, 0xFF80),
            (1 + 0x1p-8, 0x3F80),  // tie → even (down)
            (1 + 0x3p-8, 0x3F82),  // tie → even (up)
            (Float(1 + 0x1p-8).nextUp, 0x3F81),
            (.greatestFiniteMagnitude, 0x7F80),  // rounds up to infinity
            (-.greatestFiniteMagnitude, 0xFF80),
            (Float(bitPattern: 0x0001_8000), 0x0002),  // subnormal tie → even (up)
            (Float(bitPattern: 0x0000_8000), 0x0000)  // subnormal tie → even (down)
        ]
        for (value, bits) in cases {
            XCTAssertEqual(bfloat16FromFloat(value), bits, "\(value)")
        }
        XCTAssertEqual(floatFromBFloat16(0x0001), Float(bitPattern: 0x0001_0000))
        XCTAssertTrue(floatFromBFloat16(bfloat16FromFloat(.nan)).isNaN)
        XCTAssertTrue(floatFromBFloat16(bfloat16FromFloat(Float(bitPattern: 0x7F80_0001))).isNaN)
        XCTAssertTrue(floatFromBFloat16(bfloat16FromFloat(Float(bitPattern: 0xFFFF_FFFF))).isNaN)
    }

    // MARK: Writing

    func testRoundTripEveryDType() throws {
        let url = try temporaryDirectory().appendingPathComponent("all.safetensors")
        let floats: [Float] = [0, -0.0, 1, -1.5, 0.1, 65504, 1e-7, .infinity, -.infinity, .greatestFiniteMagnitude, 0x1p-130, 1e30]
        let entries = [
            SafeTensorsEntry(name: "f32", shape: [3, 4], floats: floats),
            SafeTensorsEntry(name: "f16", shape: [3, 4], floats: floats, dtype: .f16),
            SafeTensorsEntry(name: "bf16", shape: [12], floats: floats, dtype: .bf16),
            SafeTensorsEntry(name: "i64", shape: [2, 2], integers: [Int.min, Int.max, 0, -3]),
            SafeTensorsEntry(name: "i32", shape: [3], integers: [Int(Int32.min), Int(Int32.max), 5], dtype: .i32),
            SafeTensorsEntry(name: "scalar", shape: [], floats: [2.5]),
            SafeTensorsEntry(name: "empty", shape: [0, 7], floats: []),
            SafeTensorsEntry(name: "odd \"name\"\n✓", shape: [1], floats: [9], dtype: .f16)
        ]
        let metadata = ["format": "pt", "quote\"key": "line\nbreak\u{01}", "ünï": "✓"]
        try writeSafeTensors(entries, metadata: metadata, to: url)

        let st = try SafeTensorsFile(contentsOf: url)
        XCTAssertEqual(st.metadata, metadata)
        XCTAssertEqual(st.dataOffset % 8, 0, "header padded to a multiple of 8")
        XCTAssertEqual(st.tensors.map(\.name), entries.map(\.name), "data in the order given")
        XCTAssertEqual(st.tensors.map(\.shape), entries.map(\.shape))
        XCTAssertEqual(st.tensors.map(\.dtype), [.f32, .f16, .bf16, .i64, .i32, .f32, .f32, .f16])
        bitsEqual(try st.floats("f32"), floats)
        bitsEqual(try st.floats("f16"), floats.map { floatFromHalf(halfFromFloat($0)) })
        bitsEqual(try st.floats("bf16"), floats.map { floatFromBFloat16(bfloat16FromFloat($0)) })
        XCTAssertEqual(try st.floats("f16")[0..<6], [0, -0.0, 1, -1.5, 0.0999755859375, 65504])
        XCTAssertEqual(try st.integers("i64"), [Int.min, Int.max, 0, -3])
        XCTAssertEqual(try st.integers("i32"), [Int(Int32.min), Int(Int32.max), 5])
        XCTAssertEqual(try st.floats("scalar"), [2.5])
        XCTAssertEqual(try st.floats("empty"), [])
        XCTAssertEqual(try st.floats("odd \"name\"\n✓"), [9])
        XCTAssertEqual(st.info("i32")?.byteRange.count, 12)
    }

    func testNaNRoundTripsInEveryFloatDType() throws {
        let url = try temporaryDirectory().appendingPathComponent("nan.safetensors")
        let entries = [SafeTensorsDType.f32, .f16, .bf16].map {
            SafeTensorsEntry(name: $0.rawValue, shape: [2], floats: [.nan, -.nan], dtype: $0)
        }
        try writeSafeTensors(entries, to: url)
        let st = try SafeTensorsFile(contentsOf: url)
        for dtype in ["F32", "F16", "BF16"] {
            XCTAssertTrue(try st.floats(dtype).allSatisfy(\.isNaN), dtype)
        }
    }

    func testWriterRejectsInconsistentEntries() throws {
        let url = try temporaryDirectory().appendingPathComponent("x.safetensors")
        let cases: [([SafeTensorsEntry], SafeTensorsError.Kind)] = [
            ([SafeTensorsEntry(name: "a", shape: [2, 2], floats: [1, 2, 3])], .invalidEntryToWrite),
            ([SafeTensorsEntry(name: "a", shape: [-1], floats: [])], .invalidShape),
            ([SafeTensorsEntry(name: "a", shape: [1], floats: [1]), SafeTensorsEntry(name: "a", shape: [1], floats: [1])], .duplicateName),
            ([SafeTensorsEntry(name: "__metadata__", shape: [1], floats: [1])], .invalidEntryToWrite),
            ([SafeTensorsEntry(name: "a", shape: [1], floats: [1], dtype: .i64)], .dtypeMismatch),
            ([SafeTensorsEntry(name: "a", shape: [1], integers: [1], dtype: .f32)], .dtypeMismatch),
            ([SafeTensorsEntry(name: "a", shape: [1], integers: [1], dtype: .u8)], .dtypeMismatch),
            ([SafeTensorsEntry(name: "a", shape: [1], integers: [1 << 40], dtype: .i32)], .dtypeMismatch)
        ]
        for (entries, kind) in cases {
            XCTAssertThrowsError(try writeSafeTensors(entries, to: url)) {
                XCTAssertEqual(($0 as? SafeTensorsError)?.kind, kind, "\($0)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: url.path))
        }
    }

    func testFailedWriteKeepsTheOldFileAndLeavesNoTemporaryFile() throws {
        let directory = try temporaryDirectory()
        let url = directory.appendingPathComponent("model.safetensors")
        try writeSafeTensors([SafeTensorsEntry(name: "a", shape: [2], floats: [1, 2])], to: url)
        let before = try Data(contentsOf: url)

        XCTAssertThrowsError(try writeSafeTensors([SafeTensorsEntry(name: "a", shape: [3], floats: [1, 2])], to: url))
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["model.safetensors"])

        // Overwriting succeeds and still leaves only the one file.
        try writeSafeTensors([SafeTensorsEntry(name: "b", shape: [1], floats: [3])], to: url)
        XCTAssertEqual(try SafeTensorsFile(contentsOf: url).tensors.map(\.name), ["b"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory.path), ["model.safetensors"])
    }

    func testWritingIntoAMissingDirectoryThrows() throws {
        let url = try temporaryDirectory().appendingPathComponent("missing/model.safetensors")
        XCTAssertThrowsError(try writeSafeTensors([SafeTensorsEntry(name: "a", shape: [1], floats: [1])], to: url)) {
            let error = $0 as? SafeTensorsError
            XCTAssertEqual(error?.kind, .io)
            XCTAssertTrue(error?.localizedDescription.contains("missing/model.safetensors") ?? false, "\($0)")
        }
    }

    // MARK: Reading API

    func testReadingWithTheWrongAccessorOrNameThrows() throws {
        let st = try SafeTensorsFile(data: smallValidFile(), source: "small.safetensors")
        XCTAssertEqual(st.metadata, ["k": "v"])
        XCTAssertEqual(try st.floats("b"), [0.5, -0.5, 1])
        XCTAssertThrowsError(try st.floats("ids")) { XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .dtypeMismatch) }
        XCTAssertThrowsError(try st.integers("w")) { XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .dtypeMismatch) }
        XCTAssertThrowsError(try st.floats("nope")) { XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .missingTensor) }
        XCTAssertNil(st.info("nope"))
    }

    func testOtherSpecDTypesOpenButAreNotReadAsFloats() throws {
        let st = try SafeTensorsFile(
            data: file(
                #"{"u":{"dtype":"U16","shape":[2],"data_offsets":[0,4]},"d":{"dtype":"F64","shape":[],"data_offsets":[4,12]}}"#,
                data: Array(repeating: 0, count: 12)))
        XCTAssertEqual(st.tensors.map(\.dtype), [.u16, .f64])
        XCTAssertThrowsError(try st.floats("d")) { XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .dtypeMismatch) }
        XCTAssertThrowsError(try st.integers("u")) { XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .dtypeMismatch) }
    }

    func testReadsFromADataSliceAndAcceptsWhitespaceAndNullMetadata() throws {
        var padded = Data([9, 9, 9])
        padded.append(
            file(
                " {\"__metadata__\":null, \"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":[1]}}\n   ",
                data: [1, 0, 0, 0]))
        let st = try SafeTensorsFile(data: padded.dropFirst(3))
        XCTAssertEqual(try st.integers("a"), [1])
        XCTAssertEqual(st.metadata, [:])
        XCTAssertEqual(try SafeTensorsFile(data: file("{}")).tensors.count, 0)
    }

    func testMissingOrEmptyFileOnDisk() throws {
        let directory = try temporaryDirectory()
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: directory.appendingPathComponent("none.safetensors"))) {
            XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .io)
        }
        let empty = directory.appendingPathComponent("empty.safetensors")
        XCTAssertTrue(FileManager.default.createFile(atPath: empty.path, contents: Data()))
        XCTAssertThrowsError(try SafeTensorsFile(contentsOf: empty)) {
            XCTAssertEqual(($0 as? SafeTensorsError)?.kind, .fileTooShort)
        }
    }

    // MARK: Hostile and corrupt files, one problem each

    func testShortFile() {
        for count in 0..<8 { assertRejects(Data(repeating: 0, count: count), .fileTooShort, offset: 0) }
    }

    func testHeaderLength() {
        assertRejects(file("{}", declaredLength: 3), .headerLength, offset: 0, mentioning: "at most 2")
        assertRejects(file("{}", declaredLength: 100_000_001), .headerLength, mentioning: "100000000")
        assertRejects(file("{}", declaredLength: UInt64.max), .headerLength, mentioning: "\(UInt64.max)")
        assertRejects(file("{}", declaredLength: 1 << 63), .headerLength)
    }

    func testHeaderNotJSONOrNotAnObject() {
        assertRejects(file(""), .headerSyntax, offset: 8)
        assertRejects(file("{abc}"), .headerSyntax, offset: 9)
        assertRejects(file("{} x"), .headerSyntax, offset: 11)
        assertRejects(file("[1, 2]"), .headerSyntax, mentioning: "an array")
        assertRejects(file("\"text\""), .headerSyntax)
        assertRejects(file("{\"a\":tru}"), .headerSyntax)
        assertRejects(file("{\"a\":01}"), .headerSyntax)
        assertRejects(file("{\"a\":\"\u{01}\"}"), .headerSyntax, mentioning: "control")
        assertRejects(file("{\"a\":\"\\x\"}"), .headerSyntax)
        assertRejects(file("{\"a\":\"\\uD800\"}"), .headerSyntax, mentioning: "surrogate")
        assertRejects(file("{\"a\":\"\\uDC00\"}"), .headerSyntax, mentioning: "surrogate")
        assertRejects(file(headerBytes: Array("{\"a\":\"".utf8) + [0xC3, 0x28] + Array("\"}".utf8)), .headerSyntax, mentioning: "UTF-8")
        assertRejects(file(headerBytes: [0xFF, 0xFE]), .headerSyntax, offset: 8)
        // Nesting far beyond what a header needs must not exhaust the stack.
        assertRejects(file("{\"a\":" + String(repeating: "[", count: 200_000)), .headerSyntax, mentioning: "nesting")
    }

    func testEntryWithMissingOrMistypedFields() {
        let data = [UInt8](repeating: 0, count: 4)
        assertRejects(file(#"{"a":3}"#), .invalidEntry, offset: 13)
        assertRejects(file(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: data), .invalidEntry, mentioning: "\"dtype\"")
        assertRejects(file(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, data: data), .invalidEntry, mentioning: "\"shape\"")
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[1]}}"#, data: data), .invalidEntry, mentioning: "\"data_offsets\"")
        assertRejects(file(#"{"a":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}"#, data: data), .invalidEntry, mentioning: "a string")
        assertRejects(file(#"{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}"#, data: data), .invalidEntry)
        assertRejects(file(#"{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, data: data), .invalidEntry)
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":{"0":4}}}"#, data: data), .invalidEntry)
        assertRejects(
            file(#"{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: data), .invalidEntry, mentioning: "found 2"
        )
    }

    func testUnknownDType() {
        assertRejects(
            file(#"{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            .unknownDType, offset: 8 + 14, mentioning: "\"F33\"")
        assertRejects(file(#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), .unknownDType)
        // Names and values from the file are escaped and shortened in messages.
        let longName = String(repeating: "x\\n", count: 10_000)
        assertRejects(
            file("{\"\(longName)\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", data: [0, 0, 0, 0]),
            .unknownDType, mentioning: "x\\nx\\n")
        do {
            _ = try SafeTensorsFile(
                data: file("{\"a\":{\"dtype\":\"F32\",\"shape\":[\(String(repeating: "7", count: 100_000))],\"data_offsets\":[0,4]}}"))
            XCTFail("a 100000-digit dimension was accepted")
        } catch {
            XCTAssertLessThan(error.localizedDescription.count, 300, error.localizedDescription)
        }
    }

    func testBadShapes() {
        let data = [UInt8](repeating: 0, count: 4)
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: data), .invalidShape, mentioning: "-1")
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}"#, data: data), .invalidShape, mentioning: "1.0")
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#, data: data), .invalidShape)
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]}}"#, data: data), .invalidShape)
        // Element count (and byte count) overflow.
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#, data: data), .invalidShape)
        assertRejects(file(#"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,4]}}"#, data: data), .invalidShape)
        // A zero dimension makes the count 0 even after huge ones, which is fine if offsets agree.
        XCTAssertNoThrow(try SafeTensorsFile(data: file(#"{"a":{"dtype":"F32","shape":[0,4294967296],"data_offsets":[0,0]}}"#)))
    }

    func testBadOffsets() {
        let eight = [UInt8](repeating: 0, count: 8)
        let entry = { (name: String, offsets: String) in "\"\(name)\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\(offsets)}" }
        assertRejects(file("{\(entry("a", "[4,0]"))}", data: eight), .invalidOffsets, mentioning: "[4, 0]")
        assertRejects(file("{\(entry("a", "[0,4,8]"))}", data: eight), .invalidOffsets, mentioning: "3 numbers")
        assertRejects(file("{\(entry("a", "[0]"))}", data: eight), .invalidOffsets)
        assertRejects(file("{\(entry("a", "[-4,0]"))}", data: eight), .invalidOffsets)
        assertRejects(file("{\(entry("a", "[400,404]"))}", data: eight), .invalidOffsets, mentioning: "8-byte data section")
        assertRejects(file("{\(entry("a", "[9223372036854775803,9223372036854775807]"))}", data: eight), .invalidOffsets)
        // Overlap, gap, a first tensor not at 0, and bytes left over at the end.
        assertRejects(file("{\(entry("a", "[0,4]")),\(entry("b", "[2,6]"))}", data: eight), .invalidOffsets, mentioning: "overlaps \"a\"")
        assertRejects(file("{\(entry("a", "[0,4]")),\(entry("b", "[0,4]"))}", data: eight), .invalidOffsets, mentioning: "overlaps")
        assertRejects(file("{\(entry("a", "[0,4]")),\(entry("b", "[5,9]"))}", data: eight + [0]), .invalidOffsets, mentioning: "gap")
        assertRejects(file("{\(entry("a", "[4,8]"))}", data: eight), .invalidOffsets, mentioning: "gap")
        let header = "{\(entry("a", "[0,4]"))}"
        assertRejects(file(header, data: eight), .invalidOffsets, offset: 8 + header.utf8.count + 4, mentioning: "4 bytes after")
        // Reversed order in the header is fine: order comes from the offsets.
        XCTAssertEqual(
            try SafeTensorsFile(data: file("{\(entry("b", "[4,8]")),\(entry("a", "[0,4]"))}", data: eight)).tensors.map(\.name), ["a", "b"])
    }

    func testByteCountNotMatchingDTypeTimesShape() {
        assertRejects(
            file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
            .byteCountMismatch, mentioning: "expected 8 bytes")
        assertRejects(
            file(#"{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}}"#, data: Array(repeating: 0, count: 8)),
            .byteCountMismatch, mentioning: "found 8")
    }

    func testDuplicateNames() {
        let entry = #""a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#
        assertRejects(file("{\(entry),\(entry)}", data: [1]), .duplicateName, offset: 8 + 1 + entry.utf8.count + 1)
        assertRejects(file(#"{"__metadata__":{},"__metadata__":{}}"#), .duplicateName)
    }

    func testBadMetadata() {
        assertRejects(file(#"{"__metadata__":{"k":1}}"#), .invalidEntry, mentioning: "\"k\"")
        assertRejects(file(#"{"__metadata__":{"k":null}}"#), .invalidEntry)
        assertRejects(file(#"{"__metadata__":["k"]}"#), .invalidEntry)
        assertRejects(file(#"{"__metadata__":{"k":"a","k":"b"}}"#), .invalidEntry, mentioning: "twice")
    }

    // MARK: Truncation and mutation

    func testEveryTruncationIsAnError() throws {
        let valid = try smallValidFile()
        XCTAssertNoThrow(try SafeTensorsFile(data: valid))
        for length in 0..<valid.count {
            XCTAssertThrowsError(try SafeTensorsFile(data: valid.prefix(length)), "prefix of \(length) bytes") {
                XCTAssertTrue($0 is SafeTensorsError)
            }
        }
    }

    /// Random corruption anywhere must end in an error or in a file that is still consistent,
    /// never in a crash.
    func testRandomMutationsNeverCrash() throws {
        let valid = try smallValidFile()
        let headerEnd = 8 + Int(valid.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let interesting = Array("{}[],:\"-0123456789.e \\u".utf8) + [0x00, 0xFF, 0xC3]
        var random = SplitMix64(seed: 2024)
        var accepted = 0
        for _ in 0..<4000 {
            var bytes = [UInt8](valid)
            for _ in 0..<(1 + Int(random.next() % 4)) {
                let position = random.next() % 3 == 0 ? Int(random.next() % 8) : Int(random.next() % UInt64(headerEnd))
                let useful = random.next() % 2 == 0
                bytes[position] =
                    useful ? interesting[Int(random.next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 10 == 0 { bytes.removeLast(Int(random.next() % 8)) }
            do {
                let st = try SafeTensorsFile(data: Data(bytes))
                accepted += 1
                var covered = 0
                for tensor in st.tensors {
                    XCTAssertEqual(tensor.byteRange.lowerBound, covered)
                    covered = tensor.byteRange.upperBound
                    _ = try? st.floats(tensor.name)
                    _ = try? st.integers(tensor.name)
                }
                XCTAssertEqual(st.dataOffset + covered, bytes.count)
            } catch {
                XCTAssertTrue(error is SafeTensorsError, "\(error)")
            }
        }
        XCTAssertLessThan(accepted, 4000)
    }
}

/// A small seeded generator (SplitMix64) so the mutation tests are repeatable.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
