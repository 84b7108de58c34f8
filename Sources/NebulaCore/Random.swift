import Foundation

/// A small, fast, seedable random number generator (xoshiro256**, seeded through SplitMix64), so a
/// seed gives the same numbers on every platform and every run.
///
/// ```swift
/// var rng = SeededGenerator(seed: 42)
/// let w = Tensor.randn([4, 4], std: 0.02, generator: &rng)
/// ```
public struct SeededGenerator: RandomNumberGenerator, Codable, Sendable, Equatable {
    /// The full generator state (four 64-bit words); saving and restoring it resumes the stream exactly.
    public var state: [UInt64]

    /// Whether this is ``forLoading``: `Tensor.randn` and `Tensor.uniform` give zeros without drawing.
    public private(set) var skipsInitialization = false

    enum CodingKeys: String, CodingKey { case state }

    /// A generator for building a model whose every weight is loaded next: `Tensor.randn` and
    /// `Tensor.uniform` return zeros without drawing, so building costs only the allocation (random
    /// initialisation of GPT-2 small's 124M weights alone took about 3 s).
    public static var forLoading: SeededGenerator {
        var generator = SeededGenerator(seed: 0)
        generator.skipsInitialization = true
        return generator
    }

    /// The generator whose state is the first four numbers of ``SeededRandom``(`seed`) (SplitMix64 seeding, as
    /// xoshiro's authors recommend).
    public init(seed: UInt64) {
        var seeding = SeededRandom(seed: seed)
        state = [seeding.next(), seeding.next(), seeding.next(), seeding.next()]
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotl(state[3], 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 bits of precision.
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / Float(1 << 24)) }

    /// Uniform in [0, 1) with 53 bits of precision.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / Double(UInt64(1) << 53)) }

    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Float {
        let u1 = max(nextDouble(), 1e-300)
        let u2 = nextDouble()
        return Float(sqrt(-2 * log(u1)) * cos(2 * Double.pi * u2))
    }

    /// A uniformly chosen integer in `0..<n`.
    public mutating func nextInt(below n: Int) -> Int { Int(next() % UInt64(n)) }
}

/// SplitMix64: a tiny seeded random number generator (data order: document splits, batches, shuffles) with the same sequence on every platform,
/// so splits and batches repeat exactly from a seed. (Swift's `random(in:using:)` algorithms may
/// change between releases; ``next(below:)`` and ``nextDouble()`` are defined here.)
///
/// ```swift
/// var random = SeededRandom(seed: 42)
/// let index = random.next(below: 10)
/// ```
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<bound` (Lemire's multiply-and-reject method).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0, "bound must be positive")
        let range = UInt64(bound)
        var product = next().multipliedFullWidth(by: range)
        if product.low < range {
            let threshold = (0 &- range) % range
            while product.low < threshold { product = next().multipliedFullWidth(by: range) }
        }
        return Int(product.high)
    }

    /// A uniform `Double` in `[0, 1)`.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Shuffles `array` in place (Fisher–Yates, with ``next(below:)``).
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) { array.swapAt(i, next(below: i + 1)) }
    }
}
