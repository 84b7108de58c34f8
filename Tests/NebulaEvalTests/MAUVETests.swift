import Foundation
import XCTest
@testable import NebulaEval
import NebulaTensor

final class MAUVETests: XCTestCase {
    /// Written by reference/eval/mauve_reference.py with mauve-text 0.4 (seed 25, default settings).
    struct Fixture: Decodable {
        struct Case: Decodable {
            var mauve: Double
            var num_buckets: Int
            var p_hist: [Double]
            var q_hist: [Double]
            var divergence_curve: [[Double]]
            var explained_variance_ratio: [Double]
            var pca_dimension: Int
            var mauve_by_seed: [Double]
        }
        var n: Int
        var dimension: Int
        var cases: [String: Case]
    }

    func loadCase(_ name: String) throws -> (human: [[Float]], model: [[Float]], expected: Fixture.Case) {
        let fixture = try loadFixture("mauve/mauve", as: Fixture.self)
        let url = try XCTUnwrap(Bundle.module.url(forResource: name, withExtension: "f32", subdirectory: "Fixtures/mauve"))
        let floats = try Data(contentsOf: url).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        let d = fixture.dimension, n = fixture.n
        XCTAssertEqual(floats.count, 2 * n * d)
        let rows = (0..<(2 * n)).map { Array(floats[($0 * d)..<(($0 + 1) * d)]) }
        return (Array(rows[..<n]), Array(rows[n...]), try XCTUnwrap(fixture.cases[name]))
    }

    // MARK: hand-computed values

    func testIdenticalHistogramsScoreOne() {
        let m = MAUVE(p: [0.2, 0.3, 0.5], q: [0.2, 0.3, 0.5])
        XCTAssertEqual(m.score, 1, accuracy: 1e-9)
        XCTAssertEqual(m.divergenceCurve.count, 27)
        XCTAssertEqual(m.divergenceCurve.first, .init(x: 1, y: 0))
        XCTAssertEqual(m.divergenceCurve.last, .init(x: 0, y: 1))
    }

    func testDisjointHistogramsByHand() {
        // p = [1, 0], q = [0, 1]: R_λ = [λ, 1 − λ], KL(q‖R) = −log(1 − λ), KL(p‖R) = −log λ, so the points
        // are ((1 − λ)^c, λ^c). With three mixtures, λ ≈ 0, ½, 1:
        // (1, 0) (1, 0) (2^−5, 2^−5) (0, 1) (0, 1) → area (1 − 2^−5)·2^−5/2 + 2^−5·(1 + 2^−5)/2 = 2^−5.
        let m = MAUVE(p: [1, 0], q: [0, 1], curvePoints: 3)
        XCTAssertEqual(m.score, pow(2, -5), accuracy: 1e-5)
        XCTAssertEqual(m.divergenceCurve[2].x, pow(0.5, 5), accuracy: 1e-12)
        XCTAssertEqual(MAUVE(p: [1, 0], q: [0, 1], scalingConstant: 1, curvePoints: 3).score, 0.5, accuracy: 1e-5)
    }

    func testKullbackLeiblerByHand() {
        XCTAssertEqual(MAUVE.kullbackLeibler([0.5, 0.5, 0], [0.25, 0.25, 0.5]), log(2), accuracy: 1e-12)
    }

    func testSymmetricEigenByHand() {
        let e = SymmetricEigen(matrix: [2, 1, 1, 2], size: 2)
        XCTAssertEqual(e.values[0], 3, accuracy: 1e-12)
        XCTAssertEqual(e.values[1], 1, accuracy: 1e-12)
        XCTAssertEqual(abs(e.vector(0).first!), 0.5.squareRoot(), accuracy: 1e-12)

        // A random symmetric matrix: A v = λ v for every pair, and the vectors are orthonormal.
        var rng = SeededGenerator(seed: 3)
        let n = 40
        var a = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i { let x = Double(rng.nextGaussian()); a[i * n + j] = x; a[j * n + i] = x } }
        let eigen = SymmetricEigen(matrix: a, size: n)
        for k in 0..<n {
            let v = Array(eigen.vector(k))
            for i in 0..<n {
                let av = (0..<n).reduce(0.0) { $0 + a[i * n + $1] * v[$1] }
                XCTAssertEqual(av, eigen.values[k] * v[i], accuracy: 1e-9)
            }
            XCTAssertEqual(v.reduce(0) { $0 + $1 * $1 }, 1, accuracy: 1e-12)
        }
        XCTAssertEqual(eigen.values, eigen.values.sorted(by: >))
    }

    func testKMeansFindsSeparatedBlobs() {
        var rng = SeededGenerator(seed: 1)
        let centres: [[Float]] = [[0, 0], [10, 0], [0, 10]]
        let points = (0..<90).map { i in centres[i % 3].map { $0 + 0.5 * rng.nextGaussian() } }
        let clustering = KMeans(points: points, clusters: 3, seed: 7)
        for i in 3..<90 { XCTAssertEqual(clustering.assignments[i], clustering.assignments[i % 3]) }
        XCTAssertEqual(Set(clustering.assignments).count, 3)
        for centroid in clustering.centroids {
            XCTAssertTrue(centres.contains { zip($0, centroid).allSatisfy { abs($0 - $1) < 0.5 } }, "\(centroid)")
        }
    }

    func testKMeansFillsEmptyClusters() {
        // Four copies of two points, four clusters: every cluster still gets a point.
        let points: [[Float]] = [[0], [0], [0], [0], [1], [1], [1], [1]]
        let clustering = KMeans(points: points, clusters: 4, restarts: 1, seed: 0)
        XCTAssertEqual(Set(clustering.assignments).count, 4)
        XCTAssertEqual(clustering.inertia, 0, accuracy: 1e-6)
    }

    func testDefaultClusterCountAndOptions() {
        var rng = SeededGenerator(seed: 5)
        let vectors = { (count: Int) in (0..<count).map { _ in (0..<8).map { _ in rng.nextGaussian() } } }
        let human = vectors(25), model = vectors(45)
        XCTAssertEqual(MAUVE(human: human, model: model).p.count, 2, "round(2.5) = 2 in Python")
        XCTAssertEqual(MAUVE(human: vectors(35), model: model).p.count, 4, "round(3.5) = 4")
        var options = MAUVE.Options()
        options.clusters = 5
        options.explainedVariance = nil
        options.scalingConstant = 1
        let m = MAUVE(human: human, model: model, options: options)
        XCTAssertEqual(m.q.count, 5)
        XCTAssertEqual(m.p.reduce(0, +), 1, accuracy: 1e-12)
        XCTAssertEqual(m.score, MAUVE(p: m.p, q: m.q, scalingConstant: 1).score)
    }

    // MARK: against mauve-text (reference/eval/mauve_reference.py)

    func testCurveAndAreaOnThePackagesHistograms() throws {
        for name in ["identical", "mid", "far"] {
            let expected = try loadCase(name).expected
            let m = MAUVE(p: expected.p_hist, q: expected.q_hist)
            XCTAssertEqual(m.score, expected.mauve, accuracy: 1e-6, name)
            for (point, reference) in zip(m.divergenceCurve, expected.divergence_curve) {
                XCTAssertEqual(point.x, reference[0], accuracy: 1e-9, name)
                XCTAssertEqual(point.y, reference[1], accuracy: 1e-9, name)
            }
        }
    }

    func testPCAMatchesScikitLearn() throws {
        for name in ["mid", "far"] {
            let (human, model, expected) = try loadCase(name)
            var data = RowMatrix(stacking: model + human)
            data.normalizeRows()
            let pca = PCA(fitting: data)
            for (ratio, reference) in zip(pca.explainedVarianceRatios, expected.explained_variance_ratio) {
                XCTAssertEqual(ratio, reference, accuracy: 1e-5, name)
            }
            XCTAssertEqual(pca.dimensions(explaining: 0.9), expected.pca_dimension, name)
        }
    }

    func testScoresAgainstThePackage() throws {
        // The k-means seed alone moves MAUVE by a few hundredths here (300 vectors in 30 clusters; the
        // package's own spread over seeds 0...9 is in the fixture), so the means over ten seeds are compared.
        var means: [String: Double] = [:]
        for name in ["identical", "mid", "far"] {
            let (human, model, expected) = try loadCase(name)
            var scores: [Double] = []
            for seed in 0..<10 {
                var options = MAUVE.Options()
                options.seed = UInt64(seed)
                let m = MAUVE(human: human, model: model, options: options)
                XCTAssertEqual(m.p.count, expected.num_buckets)
                scores.append(m.score)
            }
            let mean = scores.reduce(0, +) / 10, packageMean = expected.mauve_by_seed.reduce(0, +) / 10
            means[name] = mean
            print(
                "MAUVE \(name), mean over seeds 0...9: Nebula \(mean) (min \(scores.min()!), max \(scores.max()!)), mauve-text \(packageMean)"
            )
            XCTAssertEqual(mean, packageMean, accuracy: name == "far" ? 0.002 : 0.05, name)
        }
        XCTAssertGreaterThan(means["identical"]!, 0.9)
        XCTAssertLessThan(means["far"]!, 0.01)
    }
}
