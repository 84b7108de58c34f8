/// Finds the allowed special tokens in UTF-8 text and cuts the text around them.
struct SpecialTokenMatcher {
    private let tokens: [(bytes: [UInt8], id: Int)]  // longest first
    private var startsWith = [Bool](repeating: false, count: 256)

    init(specialTokens: [String: Int], allowed: AllowedSpecial) {
        tokens =
            specialTokens
            .filter { allowed.allows($0.key) && !$0.key.isEmpty }
            .map { (Array($0.key.utf8), $0.value) }
            .sorted { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.bytes.lexicographicallyPrecedes($1.bytes) }
        for token in tokens { startsWith[Int(token.bytes[0])] = true }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// The text cut into ordinary runs (`special == nil`) and special tokens, in order.
    func segments(of bytes: UnsafeBufferPointer<UInt8>) -> [(range: Range<Int>, special: Int?)] {
        guard !tokens.isEmpty else { return [(0..<bytes.count, nil)] }
        var result: [(range: Range<Int>, special: Int?)] = []
        var runStart = 0
        var i = 0
        while i < bytes.count {
            if startsWith[Int(bytes[i])], let token = match(at: i, in: bytes) {
                if runStart < i { result.append((runStart..<i, nil)) }
                result.append((i..<i + token.bytes.count, token.id))
                i += token.bytes.count
                runStart = i
            } else {
                i += 1
            }
        }
        if runStart < bytes.count { result.append((runStart..<bytes.count, nil)) }
        return result
    }

    private func match(at index: Int, in bytes: UnsafeBufferPointer<UInt8>) -> (bytes: [UInt8], id: Int)? {
        for token in tokens where index + token.bytes.count <= bytes.count {
            var equal = true
            for (offset, byte) in token.bytes.enumerated() where bytes[index + offset] != byte {
                equal = false
                break
            }
            if equal { return token }
        }
        return nil
    }
}
