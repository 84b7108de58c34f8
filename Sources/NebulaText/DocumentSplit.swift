import NebulaCore
/// A deterministic, seeded split of a corpus's documents into training and validation sets.
///
/// ```swift
/// let split = DocumentSplit(documentCount: cache.documentCount, validationFraction: 0.05, seed: 1337)
/// let train = cache.tokens(ofDocuments: split.train)
/// ```
public struct DocumentSplit: Sendable, Equatable {
    /// Training document indices, ascending.
    public let train: [Int]
    /// Validation document indices, ascending.
    public let validation: [Int]

    /// Shuffles `0..<documentCount` with `seed` and takes `validationFraction` of them (rounded, at
    /// least one when the fraction is positive and there are two or more documents) for validation.
    public init(documentCount: Int, validationFraction: Double, seed: UInt64) {
        precondition(validationFraction >= 0 && validationFraction < 1, "validationFraction must be in [0, 1)")
        var order = Array(0..<documentCount)
        var random = SeededRandom(seed: seed)
        random.shuffle(&order)
        var count = Int((Double(documentCount) * validationFraction).rounded())
        if validationFraction > 0 && documentCount >= 2 { count = min(max(count, 1), documentCount - 1) }
        validation = order[..<count].sorted()
        train = order[count...].sorted()
    }
}
