// A small, strict JSON reader for safetensors headers.
//
// Foundation's JSONSerialization silently keeps one of two duplicate keys, does not say where a
// problem is, and turns every number into a Double. A safetensors header needs all three: duplicate
// tensor names must be refused, errors must name a byte offset, and sizes must be exact integers.
// Objects therefore keep every member, in order, with positions; callers decide about duplicates.
// `SafeTensorsFile` turns it into tensors and metadata; `jsonQuoted` writes the strings of every JSON file Nebula
// writes by hand.

/// A parsed JSON value with the position (index into the header bytes) where it starts.
struct JSONNode {
    enum Value {
        case object([(key: String, keyPosition: Int, value: JSONNode)])
        case array([JSONNode])
        case string(String)
        /// The number's text exactly as written, so integers are never rounded through a Double.
        case number(String)
        case bool(Bool)
        case null
    }

    let value: Value
    let position: Int

    /// The JSON type name, for messages such as "expected an array, found a string".
    var typeName: String {
        switch value {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number(let text): return "the number \(displayed(text))"
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        }
    }
}

/// A JSON syntax error at `position` (index into the parsed bytes).
struct JSONSyntaxError: Error {
    let position: Int
    let message: String
}

/// Recursive-descent parser over UTF-8 bytes (RFC 8259).
struct JSONParser {
    /// A safetensors header nests three levels (header → entry → shape); anything much deeper is
    /// hostile, and the limit keeps recursion off the end of the stack.
    static let maximumDepth = 16

    private let bytes: [UInt8]
    private var index = 0

    /// Parses `bytes` as exactly one JSON value surrounded by optional whitespace.
    static func parse(_ bytes: [UInt8]) throws -> JSONNode {
        var parser = JSONParser(bytes: bytes)
        parser.skipWhitespace()
        let root = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index < bytes.count {
            throw parser.error("expected end of header after the JSON value, found \(parser.describeCurrent())")
        }
        return root
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    // MARK: Values

    private mutating func parseValue(depth: Int) throws -> JSONNode {
        guard depth < Self.maximumDepth else {
            throw error("expected at most \(Self.maximumDepth) levels of nesting, found more")
        }
        let start = index
        guard index < bytes.count else { throw error("expected a JSON value, found end of header") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return JSONNode(value: try parseObject(depth: depth), position: start)
        case UInt8(ascii: "["): return JSONNode(value: try parseArray(depth: depth), position: start)
        case UInt8(ascii: "\""): return JSONNode(value: .string(try parseString()), position: start)
        case UInt8(ascii: "t"): try expectLiteral("true"); return JSONNode(value: .bool(true), position: start)
        case UInt8(ascii: "f"): try expectLiteral("false"); return JSONNode(value: .bool(false), position: start)
        case UInt8(ascii: "n"): try expectLiteral("null"); return JSONNode(value: .null, position: start)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return JSONNode(value: .number(try parseNumber()), position: start)
        default:
            throw error("expected a JSON value, found \(describeCurrent())")
        }
    }

    private mutating func parseObject(depth: Int) throws -> JSONNode.Value {
        index += 1  // {
        var members: [(key: String, keyPosition: Int, value: JSONNode)] = []
        skipWhitespace()
        if consume(UInt8(ascii: "}")) { return .object(members) }
        while true {
            skipWhitespace()
            let keyPosition = index
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describeCurrent())")
            }
            let key = try parseString()
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw error("expected ':' after key, found \(describeCurrent())") }
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append((key, keyPosition, value))
            skipWhitespace()
            if consume(UInt8(ascii: "}")) { return .object(members) }
            guard consume(UInt8(ascii: ",")) else { throw error("expected ',' or '}', found \(describeCurrent())") }
        }
    }

    private mutating func parseArray(depth: Int) throws -> JSONNode.Value {
        index += 1  // [
        var elements: [JSONNode] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            if consume(UInt8(ascii: "]")) { return .array(elements) }
            guard consume(UInt8(ascii: ",")) else { throw error("expected ',' or ']', found \(describeCurrent())") }
        }
    }

    private mutating func parseString() throws -> String {
        let start = index
        index += 1  // opening quote
        var utf8: [UInt8] = []
        while true {
            guard index < bytes.count else {
                throw JSONSyntaxError(position: start, message: "expected a closing '\"' for the string, found end of header")
            }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let string = String(validating: utf8, as: UTF8.self) else {
                    throw JSONSyntaxError(position: start, message: "expected a UTF-8 string, found invalid UTF-8 bytes")
                }
                return string
            case UInt8(ascii: "\\"):
                index += 1
                try parseEscape(into: &utf8)
            case 0..<0x20:
                throw error("expected a printable character in the string, found control byte 0x\(hex(byte))")
            default:
                utf8.append(byte)
                index += 1
            }
        }
    }

    /// Decodes one escape (the backslash already consumed) and appends its UTF-8 bytes.
    private mutating func parseEscape(into utf8: inout [UInt8]) throws {
        guard index < bytes.count else { throw error("expected an escape character, found end of header") }
        let byte = bytes[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            let escapeStart = index - 2
            var scalar = try parseHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                    throw JSONSyntaxError(position: escapeStart, message: "expected a low surrogate after \\u\(hex(scalar)), found none")
                }
                index += 2
                let low = try parseHex4()
                guard (0xDC00..<0xE000).contains(low) else {
                    throw JSONSyntaxError(
                        position: escapeStart, message: "expected a low surrogate after \\u\(hex(scalar)), found \\u\(hex(low))")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw JSONSyntaxError(
                    position: escapeStart, message: "expected a character escape, found lone low surrogate \\u\(hex(scalar))")
            }
            // Every value left is a valid Unicode scalar.
            utf8.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw JSONSyntaxError(
                position: index - 2, message: "expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u, found \\\(describe(byte))")
        }
    }

    private mutating func parseHex4() throws -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.count, let digit = hexValue(bytes[index]) else {
                throw error("expected 4 hexadecimal digits after \\u, found \(describeCurrent())")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    /// Checks the JSON number grammar and returns the number's text.
    private mutating func parseNumber() throws -> String {
        let start = index
        _ = consume(UInt8(ascii: "-"))
        if consume(UInt8(ascii: "0")) {
            // A leading zero stands alone.
        } else if !consumeDigits() {
            throw error("expected a digit, found \(describeCurrent())")
        }
        if consume(UInt8(ascii: ".")) {
            guard consumeDigits() else { throw error("expected a digit after '.', found \(describeCurrent())") }
        }
        if consume(UInt8(ascii: "e")) || consume(UInt8(ascii: "E")) {
            _ = consume(UInt8(ascii: "+")) || consume(UInt8(ascii: "-"))
            guard consumeDigits() else { throw error("expected a digit in the exponent, found \(describeCurrent())") }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Consumes a run of decimal digits; returns whether there was at least one.
    private mutating func consumeDigits() -> Bool {
        let start = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        return index > start
    }

    private mutating func expectLiteral(_ literal: String) throws {
        for byte in literal.utf8 {
            guard index < bytes.count, bytes[index] == byte else {
                throw error("expected '\(literal)', found \(describeCurrent())")
            }
            index += 1
        }
    }

    // MARK: Helpers

    private mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private func error(_ message: String) -> JSONSyntaxError {
        JSONSyntaxError(position: index, message: message)
    }

    private func describeCurrent() -> String {
        index < bytes.count ? describe(bytes[index]) : "end of header"
    }

    private func describe(_ byte: UInt8) -> String {
        (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(hex(byte))"
    }

    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

private func hex<T: BinaryInteger>(_ value: T) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, (value is UInt8 ? 2 : 4) - digits.count)) + digits
}

/// Text from a file made safe for a one-line message: control characters escaped, and cut to
/// 64 characters so a hostile header cannot produce a huge message.
func displayed(_ text: String) -> String {
    let limit = 64
    var result = ""
    for (count, scalar) in text.unicodeScalars.enumerated() {
        guard count < limit else { return result + "…" }
        result += scalar.value < 0x20 || scalar.value == 0x7F ? scalar.escaped(asASCII: false) : String(scalar)
    }
    return result
}

/// `displayed(text)` in double quotes.
func quoted(_ text: String) -> String {
    "\"\(displayed(text))\""
}

/// A JSON string literal: quotes, backslashes and control characters escaped, everything else as is.
package func jsonQuoted(_ string: String) -> String {
    var result = "\""
    for scalar in string.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case "\n": result += "\\n"
        case "\r": result += "\\r"
        case "\t": result += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            let digits = String(scalar.value, radix: 16)
            result += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
