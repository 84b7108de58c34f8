import Foundation
import NebulaDiffusion
import NebulaModels
import NebulaTensor
import NebulaText
import XCTest
@testable import NebulaServe

/// `POST /v1/completions` for both models: answers equal to the library's own sampling with the same
/// seed, streams that add up to the same text, and concurrent requests batched without changing answers.
final class CompletionTests: XCTestCase {
    let lm = "tinystories-lm"
    let diffusion = "tinystories-diffusion"

    // MARK: References: the library run directly

    /// `GPT.generate` from the prompt's tokens (an empty prompt: from `<|endoftext|>`), without the final end-of-text.
    func referenceCompletion(prompt: String, maxTokens: Int, temperature: Float, topP: Float = 1, seed: UInt64) throws -> String {
        let models = try TestServers.referenceModels.get()
        let eot = models.tokenizer.endOfTextID!
        let ids = try models.tokenizer.encode(prompt)
        var generator = SeededGenerator(seed: seed)
        var tokens = models.languageModel.generate(
            prompt: ids.isEmpty ? [eot] : ids, maxTokens: maxTokens,
            options: SamplingOptions(temperature: temperature, topP: topP),
            stopToken: eot, generator: &generator)
        if tokens.last == eot { tokens.removeLast() }
        return try models.tokenizer.decode(tokens)
    }

    func referencePassage(
        prompt: String?, steps: Int, guidance: Float, seed: UInt64,
        noiseScale: Float? = nil, languageModelPrior: Float? = nil, renormalizeEstimates: Bool? = nil,
        label: String? = nil, classifierScale: Float = 16, decoder: PassageDecoder? = nil
    ) throws -> String {
        let models = try TestServers.referenceModels.get()
        let (system, tokenizer) = (models.system, models.tokenizer)
        return try withNoGrad {
            let condition = try prompt.map {
                system.autoencoder.encode([try tokenizer.encode($0).map(Int32.init)])
            }
            let config = try system.configuration(
                for: GenerationRequest(
                    steps: steps, guidance: guidance, noiseScale: noiseScale, renormalizeEstimates: renormalizeEstimates,
                    languageModelPrior: languageModelPrior, decoder: decoder))
            let steering = try label.map {
                try ClassifierGuidance(classifier: try XCTUnwrap(models.classifier), label: $0, scale: classifierScale)
            }
            var generator = SeededGenerator(seed: seed)
            let z = system.sample(count: 1, config, condition: condition, steering: steering, generator: &generator)
            var decoding = SeededGenerator(seed: seed)
            let tokens = system.decode(z, config, generator: &decoding)[0]
            return try system.autoencoder.passageText(tokens, tokenizer: tokenizer)
        }
    }

    func complete(_ fields: [String: Any]) async throws -> Answer {
        try await send(.POST, try await TestServers.main.value.base, "/v1/completions", body: jsonBody(fields))
    }

    func texts(_ answer: Answer) throws -> [String] {
        XCTAssertEqual(answer.status, 200, answer.body)
        let choices = try XCTUnwrap(try answer.json["choices"] as? [[String: Any]], answer.body)
        return try choices.map { try XCTUnwrap($0["text"] as? String) }
    }

    // MARK: Language model

    func testLanguageModelCompletionIsTheLibrarysSampleForTheSeed() async throws {
        let prompt = "Once upon a time, there was a little dog"
        let answer = try await complete(["model": lm, "prompt": prompt, "max_tokens": 12, "temperature": 0.8, "top_p": 0.95, "seed": 5])
        let json = try answer.json
        XCTAssertEqual(json["object"] as? String, "text_completion")
        XCTAssertEqual(json["model"] as? String, lm)
        XCTAssertTrue((json["id"] as? String ?? "").hasPrefix("cmpl-"))
        let choice = try XCTUnwrap((json["choices"] as? [[String: Any]])?.first)
        let expected = try referenceCompletion(prompt: prompt, maxTokens: 12, temperature: 0.8, topP: 0.95, seed: 5)
        XCTAssertEqual(choice["text"] as? String, expected)
        XCTAssertFalse(expected.isEmpty)
        XCTAssertEqual(choice["index"] as? Int, 0)
        let usage = try XCTUnwrap(json["usage"] as? [String: Int])
        let promptTokens = try TestServers.referenceModels.get().tokenizer.encode(prompt).count
        XCTAssertEqual(usage["prompt_tokens"], promptTokens)
        XCTAssertEqual(usage["total_tokens"], promptTokens + (usage["completion_tokens"] ?? -1))
        let reason = choice["finish_reason"] as? String
        XCTAssertTrue(reason == "length" ? usage["completion_tokens"] == 12 : reason == "stop", "finish_reason \(reason ?? "nil")")
    }

    func testLanguageModelSeedGivesTheSameTextAndChoicesDiffer() async throws {
        let fields: [String: Any] = ["model": lm, "prompt": "Tom had a red ball.", "max_tokens": 16, "temperature": 1, "n": 2, "seed": 42]
        let first = try texts(try await complete(fields))
        XCTAssertEqual(first.count, 2)
        let again = try texts(try await complete(fields))
        XCTAssertEqual(again, first)
        XCTAssertNotEqual(first[0], first[1], "choice i samples with seed + i")
        var other = fields
        other["seed"] = 43
        let shifted = try texts(try await complete(other))
        XCTAssertNotEqual(shifted, first)
        // Choice 1 of seed 42 is choice 0 of seed 43.
        XCTAssertEqual(shifted[0], first[1])
    }

    func testEmptyPromptSamplesUnconditionally() async throws {
        let answer = try await complete(["model": lm, "prompt": "", "max_tokens": 10, "temperature": 0.8, "seed": 1])
        let text = try texts(answer)[0]
        XCTAssertEqual(text, try referenceCompletion(prompt: "", maxTokens: 10, temperature: 0.8, seed: 1))
        XCTAssertEqual((try answer.json["usage"] as? [String: Int])?["prompt_tokens"], 0)
        XCTAssertGreaterThan(text.split(separator: " ").count, 2, "an unconditional sample should have words: \(text)")
    }

    func testLanguageModelStreamsOneChunkPerToken() async throws {
        let fields: [String: Any] = ["model": lm, "prompt": "Lily went to the park", "max_tokens": 10, "temperature": 0.7, "seed": 9]
        let whole = try texts(try await complete(fields))[0]
        var streamed = fields
        streamed["stream"] = true
        let answer = try await complete(streamed)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers.first(name: "Content-Type"), "text/event-stream")
        let events = answer.events
        XCTAssertEqual(events.last, "[DONE]")
        let chunks = try events.dropLast().map { try XCTUnwrap(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
        XCTAssertEqual(choices.count, chunks.count)
        let tokenChunks = choices.filter { $0["finish_reason"] is NSNull }
        XCTAssertGreaterThanOrEqual(tokenChunks.count, 3, "a chunk per token")
        XCTAssertLessThanOrEqual(tokenChunks.count, 10)
        XCTAssertEqual(choices.map { $0["text"] as? String ?? "" }.joined(), whole, "the chunks add up to the whole completion")
        XCTAssertNotNil(choices.last?["finish_reason"] as? String)
        for chunk in chunks { XCTAssertEqual(chunk["object"] as? String, "text_completion") }
    }

    // MARK: Diffusion

    func testDiffusionPassageIsTheLibrarysSampleForTheSeed() async throws {
        let answer = try await complete(["model": diffusion, "prompt": "", "steps": 8, "seed": 11])
        let text = try texts(answer)[0]
        XCTAssertEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11))
        XCTAssertGreaterThan(text.split(separator: " ").count, 3, "a passage should be a sentence or more: \(text)")
        let choice = try XCTUnwrap((try answer.json["choices"] as? [[String: Any]])?.first)
        XCTAssertEqual(choice["finish_reason"] as? String, "stop")
        let other = try texts(try await complete(["model": diffusion, "steps": 8, "seed": 12]))[0]
        XCTAssertNotEqual(other, text)
    }

    func testSamplingFieldsOverrideTheBundlesDefaultsAsInTheLibrary() async throws {
        let fields: [String: Any] = [
            "model": diffusion, "steps": 8, "seed": 11, "noise_scale": 0.7, "lm_prior": 0.5,
            "renormalize_estimates": false
        ]
        let text = try texts(try await complete(fields))[0]
        XCTAssertEqual(
            text,
            try referencePassage(
                prompt: nil, steps: 8, guidance: 1, seed: 11, noiseScale: 0.7,
                languageModelPrior: 0.5, renormalizeEstimates: false))
        XCTAssertNotEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11), "the fields changed nothing")
    }

    /// `decoder` picks the decoder of the final latent, as `GenerationRequest.decoder` does in the library.
    func testDecoderFieldPicksTheLibrarysDecoder() async throws {
        let fields: [String: Any] = ["model": diffusion, "steps": 8, "seed": 11, "decoder": "parallel"]
        let text = try texts(try await complete(fields))[0]
        XCTAssertEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11, decoder: .parallel))
        XCTAssertNotEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11), "the decoder changed nothing")
    }

    func testGuidedContinuationIsTheLibrarysSampleForTheSeed() async throws {
        let prompt = "Tom went to the park with his mom."
        let fields: [String: Any] = ["model": diffusion, "prompt": prompt, "steps": 6, "guidance": 2, "seed": 4]
        let text = try texts(try await complete(fields))[0]
        XCTAssertEqual(text, try referencePassage(prompt: prompt, steps: 6, guidance: 2, seed: 4))
        let again = try texts(try await complete(fields))[0]
        XCTAssertEqual(again, text)
        XCTAssertFalse(text.isEmpty)
    }

    /// `label` steers the loop with the bundle's classifier, as `sample(steering:)` does in the library.
    func testLabelledPassageIsTheLibrarysSteeredSampleForTheSeed() async throws {
        let fields: [String: Any] = ["model": diffusion, "steps": 8, "seed": 11, "label": "dialogue", "classifier_scale": 8]
        let text = try texts(try await complete(fields))[0]
        XCTAssertEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11, label: "dialogue", classifierScale: 8))
        XCTAssertNotEqual(text, try referencePassage(prompt: nil, steps: 8, guidance: 1, seed: 11), "the label changed nothing")
    }

    /// `suffix` (OpenAI's insertion): the middle of `max_tokens` tokens between the prompt and the suffix, the one
    /// `LatentDiffusion.infill` writes for the seed — by default the likeliest of the bundle's infill candidates at its
    /// infill LM prior, with `best_of` 1 a single loop at that prior.
    func testSuffixFillsTheGapAsTheLibrarysInfill() async throws {
        let (prompt, suffix) = ("Tom had a red ball. One day he", "He was very sad and cried.")
        let fields: [String: Any] = ["model": diffusion, "prompt": prompt, "suffix": suffix, "max_tokens": 10, "steps": 8, "seed": 3]
        let models = try TestServers.referenceModels.get()
        let (system, tokenizer) = (models.system, models.tokenizer)
        XCTAssertGreaterThan(system.infillCandidates(nil), 1, "the bundle should choose its infills among several loops")
        func expected(candidates: Int) throws -> String {
            try withNoGrad {
                let config = try system.configuration(for: GenerationRequest(steps: 8), infilling: true)
                var generator = SeededGenerator(seed: 3)
                let infill = try system.infill(
                    prefix: try tokenizer.encode(prompt), suffix: try tokenizer.encode(" " + suffix), gap: 10, count: 1, config,
                    candidates: candidates, generator: &generator)[0]
                return try tokenizer.decode(infill.middle)
            }
        }
        let middle = try texts(try await complete(fields))[0]
        XCTAssertEqual(middle, try expected(candidates: system.infillCandidates(nil)))
        XCTAssertFalse(middle.isEmpty)
        var single = fields
        single["best_of"] = 1
        let oneLoop = try texts(try await complete(single))[0]
        XCTAssertEqual(oneLoop, try expected(candidates: 1))
    }

    /// `best_of` 4 with `n` 2: the two of the library's four loops for the seed whose whole passages the frozen LM finds
    /// likeliest, in loop order.
    func testBestOfKeepsTheLikeliestLoops() async throws {
        let (prompt, suffix) = ("Tom had a red ball. One day he", "He was very sad and cried.")
        let fields: [String: Any] = [
            "model": diffusion, "prompt": prompt, "suffix": suffix, "max_tokens": 10, "steps": 4, "seed": 5, "n": 2, "best_of": 4
        ]
        let kept = try texts(try await complete(fields))
        let models = try TestServers.referenceModels.get()
        let (system, tokenizer) = (models.system, models.tokenizer)
        let expected = try withNoGrad {
            let config = try system.configuration(for: GenerationRequest(steps: 4), infilling: true)
            var generator = SeededGenerator(seed: 5)
            let loops = try system.infill(
                prefix: try tokenizer.encode(prompt), suffix: try tokenizer.encode(" " + suffix), gap: 10, count: 4, config,
                generator: &generator)
            XCTAssertGreaterThan(Set(loops.map(\.middle)).count, 1, "four loops wrote one middle: nothing to choose")
            return try system.likeliest(loops, count: 2).map { try tokenizer.decode($0.middle) }
        }
        XCTAssertEqual(kept, expected)
    }

    func testDiffusionStreamsEstimatesThenThePassage() async throws {
        let fields: [String: Any] = ["model": diffusion, "steps": 20, "seed": 3, "n": 2]
        let whole = try texts(try await complete(fields))
        var streamed = fields
        streamed["stream"] = true
        let answer = try await complete(streamed)
        XCTAssertEqual(answer.status, 200)
        XCTAssertEqual(answer.headers.first(name: "Content-Type"), "text/event-stream")
        let events = answer.events
        XCTAssertEqual(events.last, "[DONE]")
        let choices = try events.dropLast().flatMap {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["choices"] as? [[String: Any]])
        }
        let estimates = choices.filter { $0["estimate"] != nil }
        // An estimate of each choice every 2 steps (steps / 10), before the last step.
        XCTAssertEqual(estimates.compactMap { $0["step"] as? Int }, [2, 4, 6, 8, 10, 12, 14, 16, 18].flatMap { [$0, $0] })
        XCTAssertTrue(estimates.allSatisfy { $0["steps"] as? Int == 20 && ($0["text"] as? String) == "" })
        XCTAssertTrue(estimates.contains { !($0["estimate"] as? String ?? "").isEmpty }, "estimates carry decoded text")
        let finals = choices.filter { $0["finish_reason"] as? String == "stop" }
        XCTAssertEqual(finals.compactMap { $0["text"] as? String }, whole, "the final chunks carry the passages")
        XCTAssertEqual(finals.compactMap { $0["index"] as? Int }, [0, 1])
    }

    /// The default `best_of`, n × the bundle's 8 candidates, keeps to the server's cap (16): n 3 runs 16 loops, not 24.
    func testDefaultBestOfKeepsToTheCap() async throws {
        let fields: [String: Any] = [
            "model": diffusion, "prompt": "Tom had a red ball. One day he", "suffix": "He was very sad and cried.", "max_tokens": 10,
            "steps": 2, "seed": 6, "n": 3
        ]
        let byDefault = try texts(try await complete(fields))
        let capped = try texts(try await complete(fields.merging(["best_of": 16]) { $1 }))
        XCTAssertEqual(byDefault, capped)
        XCTAssertEqual(byDefault.count, 3)
    }

    /// A streamed infill runs the bundle's `best_of` too: estimates of the first `n` loops, then the kept middles, the
    /// same as unstreamed.
    func testStreamedInfillShowsEstimatesThenTheKeptMiddles() async throws {
        let fields: [String: Any] = [
            "model": diffusion, "prompt": "Tom had a red ball. One day he", "suffix": "He was very sad and cried.", "max_tokens": 10,
            "steps": 10, "seed": 4
        ]
        let whole = try texts(try await complete(fields))
        var streamed = fields
        streamed["stream"] = true
        let events = try await complete(streamed).events
        XCTAssertEqual(events.last, "[DONE]")
        let choices = try events.dropLast().flatMap {
            try XCTUnwrap((try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["choices"] as? [[String: Any]])
        }
        let estimates = choices.filter { $0["estimate"] != nil }
        XCTAssertEqual(estimates.compactMap { $0["step"] as? Int }, [1, 2, 3, 4, 5, 6, 7, 8, 9], "one choice's estimate a step")
        XCTAssertTrue(estimates.allSatisfy { $0["index"] as? Int == 0 })
        let finals = choices.filter { $0["finish_reason"] as? String == "stop" }
        XCTAssertEqual(finals.compactMap { $0["text"] as? String }, whole)
    }

    func testAListOfPromptsGivesChoicesForEachInOrder() async throws {
        let prompts = ["The cat", "One day, Ben", "Mia liked to"]
        let answer = try await complete(["model": lm, "prompt": prompts, "max_tokens": 8, "temperature": 0.9, "seed": 3])
        XCTAssertEqual(try texts(answer), try prompts.map { try referenceCompletion(prompt: $0, maxTokens: 8, temperature: 0.9, seed: 3) })
        let choices = try XCTUnwrap(try answer.json["choices"] as? [[String: Any]])
        XCTAssertEqual(choices.compactMap { $0["index"] as? Int }, [0, 1, 2])
        let usage = try XCTUnwrap(try answer.json["usage"] as? [String: Int])
        let tokenizer = try TestServers.referenceModels.get().tokenizer
        XCTAssertEqual(usage["prompt_tokens"], try prompts.map { try tokenizer.encode($0).count }.reduce(0, +))
    }

    func testConcurrentDiffusionRequestsAreBatchedAndKeepTheirAnswers() async throws {
        let live = try await TestServers.main.value
        let seeds: [UInt64] = [21, 22, 23, 24]
        let sequential = try seeds.map { try referencePassage(prompt: nil, steps: 10, guidance: 1, seed: $0) }
        let concurrent = try await concurrentTexts(live.base, bodies: seeds.map { ["model": self.diffusion, "steps": 10, "seed": $0] })
        XCTAssertEqual(concurrent, sequential)
        XCTAssertGreaterThanOrEqual(live.server.worker.peakBatch.diffusion, 2, "requests waiting together are denoised as one batch")
    }

    func testConcurrentLanguageModelRequestsAreBatchedAndKeepTheirAnswers() async throws {
        let live = try await TestServers.main.value
        let prompts = ["The cat", "One day, Ben", "Mia liked to", "The sun was"]
        let sequential = try prompts.enumerated().map {
            try referenceCompletion(prompt: $1, maxTokens: 12, temperature: 0.9, seed: UInt64($0))
        }
        let concurrent = try await concurrentTexts(
            live.base,
            bodies: prompts.enumerated().map {
                ["model": self.lm, "prompt": $1, "max_tokens": 12, "temperature": 0.9, "seed": $0]
            })
        XCTAssertEqual(concurrent, sequential)
        XCTAssertGreaterThanOrEqual(live.server.worker.peakBatch.languageModel, 2, "requests running together are decoded as one batch")
    }

    /// The first choice's text of each completion request, all sent at once, in the order of `bodies`.
    private func concurrentTexts(_ base: String, bodies: [[String: Any]]) async throws -> [String] {
        let answers = try await withThrowingTaskGroup(of: (Int, Answer).self) { group in
            for (i, body) in bodies.enumerated() {
                let data = jsonBody(body)
                group.addTask { (i, try await send(.POST, base, "/v1/completions", body: data)) }
            }
            var answers = [Answer?](repeating: nil, count: bodies.count)
            for try await (i, answer) in group { answers[i] = answer }
            return answers
        }
        return try answers.map { try texts($0!)[0] }
    }
}
