// The text layer: tokenizers, corpora, batches.
