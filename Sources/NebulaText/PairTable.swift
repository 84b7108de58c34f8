/// A fixed hash map from a pair of token ids to the pair's merge: its rank (lower merges first) and
/// the id of the merged token. Keys are the two ids packed into one `UInt64`.
struct PairTable: Sendable {
    struct Merge {
        var rank: Int32
        var id: Int32
    }

    private var keys: [UInt64]
    private var values: [Merge]
    private let mask: Int
    private static let empty = UInt64.max

    /// A table of `merges`, where `merges[rank]` is `(left, right, merged)`.
    init(merges: [(left: Int, right: Int, merged: Int)]) {
        var size = 16
        while size < merges.count * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [Merge](repeating: Merge(rank: 0, id: 0), count: size)
        mask = size - 1
        for (rank, merge) in merges.enumerated() {
            let key = Self.key(Int32(merge.left), Int32(merge.right))
            var slot = Self.slot(key) & mask
            while keys[slot] != Self.empty && keys[slot] != key { slot = (slot + 1) & mask }
            if keys[slot] == key { continue }  // a repeated merge keeps its first (lowest) rank
            keys[slot] = key
            values[slot] = Merge(rank: Int32(rank), id: Int32(merge.merged))
        }
    }

    /// The merge of `left` followed by `right`, if any.
    @inline(__always)
    func merge(_ left: Int32, _ right: Int32) -> Merge? {
        let key = Self.key(left, right)
        var slot = Self.slot(key) & mask
        while true {
            let stored = keys[slot]
            if stored == key { return values[slot] }
            if stored == Self.empty { return nil }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private static func slot(_ key: UInt64) -> Int {
        let h = key &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: h >> 32 ^ h)
    }
}
