import Foundation
import NebulaText

/// Writes a tokenizer's files into a model folder, in the formats the ecosystem reads.
public func saveTokenizer(_ tokenizer: any Tokenizer, to directory: URL) throws {
    switch tokenizer {
    case let bpe as ByteLevelBPE: try bpe.save(to: directory)
    case let chars as CharTokenizer: try chars.save(to: directory)
    default: throw TokenizerError.invalidTraining("cannot save a tokenizer of type \(type(of: tokenizer))")
    }
}
