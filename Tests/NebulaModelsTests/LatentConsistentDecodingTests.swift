import XCTest
import NebulaNN
import NebulaTensor
import NebulaText
@testable import NebulaModels

/// Latent-consistent decoding (`LatentAutoencoder.refine`) on an untrained autoencoder over the toy LM:
/// whatever the decoder proposes, the search keeps only edits that bring the re-encoded latent nearer.
final class LatentConsistentDecodingTests: XCTestCase {
    func makeAutoencoder() -> (LatentAutoencoder, CharTokenizer) {
        let (tokenizer, gpt) = AutoencoderTests.toyLanguageModel()
        var rng = SeededGenerator(seed: 11)
        return (LatentAutoencoder(AutoencoderTests.toyConfig(), languageModel: gpt, generator: &rng), tokenizer)
    }

    /// A passage with one wrong token in its last patch is corrected exactly in one edit: every token of the
    /// toy vocabulary at each of the patch's positions is proposed, and only the right one re-encodes to
    /// distance 0. A correct start is left as it is, at distance 0.
    func testOneWrongTokenIsCorrectedByReencoding() throws {
        let (ae, tokenizer) = makeAutoencoder()
        let everyEdit = tokenizer.vocabularySize * 5
        let passages = try ["the cat sat on the mat.", "birds sing in the tree."].map { try tokenizer.encode($0) }
        let z = ae.encode(passages.map { $0.map(Int32.init) })
        var corrupted = passages
        let wrong = try tokenizer.encode("k")[0]
        for i in corrupted.indices { corrupted[i][corrupted[i].count - 2] = wrong }  // the last patch: 4 tokens a latent
        let refined = ae.refine(corrupted.map { [$0] }, toward: z, rounds: 1, proposals: everyEdit)
        XCTAssertEqual(refined.passages, passages)
        for distance in refined.distances { XCTAssertEqual(distance, 0, accuracy: 1e-6) }

        let unchanged = ae.refine(passages.map { [$0] }, toward: z, rounds: 4)
        XCTAssertEqual(unchanged.passages, passages)
        XCTAssertEqual(unchanged.distances, [0, 0])
    }

    /// The search starts from the nearest candidate and never moves away from the target: from a passage
    /// with several wrong tokens, every further round ends at most as far as the one before.
    func testTheSearchStartsNearestAndNeverMovesAway() throws {
        let (ae, tokenizer) = makeAutoencoder()
        let passage = try tokenizer.encode("we like to eat red apples.")
        let z = ae.encode([passage.map(Int32.init)])
        let far = try tokenizer.encode("a dog ran in the park today.")
        let near = Array(passage.prefix(10)) + (try tokenizer.encode("kkkkkkkkkkkkkkkk"))
        let start = ae.refine([[far, near]], toward: z, rounds: 0)
        XCTAssertEqual(start.passages[0], near)
        var previous = start.distances[0]
        XCTAssertGreaterThan(previous, 0)
        for rounds in 1...4 {
            let refined = ae.refine([[far, near]], toward: z, rounds: rounds)
            XCTAssertLessThanOrEqual(refined.distances[0], previous)
            let reencoded = ae.encode([refined.passages[0].map(Int32.init)])
            XCTAssertEqual(((reencoded - z).squared()).sum().item, refined.distances[0], accuracy: 1e-3 * max(1, previous))
            previous = refined.distances[0]
        }
        XCTAssertLessThan(previous, start.distances[0], "some edit helps")
    }
}
