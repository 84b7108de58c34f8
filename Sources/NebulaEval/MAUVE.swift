import Foundation

/// MAUVE (Pillutla et al., NeurIPS 2021): how close the distribution of model texts Q is to that of
/// human texts P, measured on feature vectors of the texts (e.g. a language model's mean-pooled hidden
/// states). The steps follow the `mauve-text` package:
///
/// 1. L2-normalise every vector; PCA on the joint set, keeping the fewest directions that explain
///    `explainedVariance` of the variance;
/// 2. joint k-means (``KMeans``, k-means++ seeding and restarts; the package uses faiss with random
///    seeding), giving histograms p and q of P's and Q's vectors over the clusters;
/// 3. the divergence curve: for mixtures R_λ = λp + (1 − λ)q on a grid of λ, the points
///    (exp(−c·KL(q‖R_λ)), exp(−c·KL(p‖R_λ))), closed by (1, 0) and (0, 1);
/// 4. MAUVE = the area under that curve: 1 for identical histograms, near 0 for disjoint ones.
///
/// ```swift
/// let result = MAUVE(human: humanFeatures, model: modelFeatures)   // [[Float]] each
/// result.score                                                     // 0–1
/// MAUVE(p: [0.5, 0.5], q: [0.9, 0.1]).score                        // from histograms directly
/// ```
public struct MAUVE: Sendable {
    public struct Options: Sendable {
        /// The constant c of the divergence curve (the package's `mauve_scaling_factor`).
        public var scalingConstant: Double = 5
        /// Number of k-means clusters; `nil` picks the package's default, max(2, min(|P|, |Q|) / 10) rounded
        /// half to even (Python's `round`).
        public var clusters: Int? = nil
        /// Share of the variance the PCA keeps; `nil` clusters the normalised vectors as they are.
        public var explainedVariance: Double? = 0.9
        /// k-means runs, the best kept (the package's `kmeans_num_redo`).
        public var restarts: Int = 5
        /// Lloyd iterations per run at most (the package's `kmeans_max_iter`).
        public var maxIterations: Int = 500
        /// Mixture weights λ on the curve (the package's `divergence_curve_discretization_size`).
        public var curvePoints: Int = 25
        /// Seed of the k-means generator (25 is the package's default seed; its faiss stream differs).
        public var seed: UInt64 = 25

        public init() {}
    }

    /// One point of the divergence curve.
    public struct CurvePoint: Sendable, Equatable {
        /// exp(−c·KL(q‖R_λ)).
        public var x: Double
        /// exp(−c·KL(p‖R_λ)).
        public var y: Double
    }

    /// The area under the divergence curve, 0–1.
    public let score: Double
    /// The histograms of human (p) and model (q) vectors over the clusters.
    public let p: [Double]
    public let q: [Double]
    /// From (1, 0) through the mixtures, λ rising, to (0, 1).
    public let divergenceCurve: [CurvePoint]

    /// MAUVE of model features against human features (vectors of one length; the sets may differ in size).
    public init(human: [[Float]], model: [[Float]], options: Options = Options()) {
        precondition(!human.isEmpty && !model.isEmpty, "MAUVE: need human and model feature vectors")
        let clusters = options.clusters ?? max(2, Int((Double(min(human.count, model.count)) / 10).rounded(.toNearestOrEven)))
        var data = RowMatrix(stacking: human + model)
        data.normalizeRows()
        if let share = options.explainedVariance {
            let pca = PCA(fitting: data)
            data = pca.project(data, dimensions: pca.dimensions(explaining: share))
        }
        let assignments = KMeans.fit(
            data, clusters: clusters, restarts: options.restarts,
            maxIterations: options.maxIterations, seed: options.seed
        ).assignments
        self.init(
            p: Self.histogram(assignments[..<human.count], clusters: clusters),
            q: Self.histogram(assignments[human.count...], clusters: clusters),
            scalingConstant: options.scalingConstant, curvePoints: options.curvePoints)
    }

    /// MAUVE of two histograms over the same bins (each summing to 1).
    public init(p: [Double], q: [Double], scalingConstant: Double = 5, curvePoints: Int = 25) {
        precondition(p.count == q.count && curvePoints > 1, "MAUVE: histograms of \(p.count) and \(q.count) bins")
        self.p = p
        self.q = q
        divergenceCurve = Self.divergenceCurve(p: p, q: q, scalingConstant: scalingConstant, curvePoints: curvePoints)
        score = Self.area(under: divergenceCurve)
    }

    /// The curve's points for λ evenly spaced from 1e-6 to 1 − 1e-6 (as the package), with the end points.
    static func divergenceCurve(p: [Double], q: [Double], scalingConstant c: Double, curvePoints: Int) -> [CurvePoint] {
        let lowest = 1e-6, step = (1 - 2 * lowest) / Double(curvePoints - 1)
        let mixtures = (0..<curvePoints).map { i -> CurvePoint in
            let lambda = lowest + Double(i) * step
            let r = zip(p, q).map { lambda * $0 + (1 - lambda) * $1 }
            return CurvePoint(x: exp(-c * kullbackLeibler(q, r)), y: exp(-c * kullbackLeibler(p, r)))
        }
        return [CurvePoint(x: 1, y: 0)] + mixtures + [CurvePoint(x: 0, y: 1)]
    }

    /// KL(a‖b) in nats over the bins where a > 0 (every such bin has b > 0 on the curve, as λ ∈ (0, 1)).
    static func kullbackLeibler(_ a: [Double], _ b: [Double]) -> Double {
        zip(a, b).reduce(0) { sum, pair in pair.0 > 0 ? sum + pair.0 * log(pair.0 / pair.1) : sum }
    }

    /// Trapezoidal area between the curve and the x-axis. Both coordinates move monotonically along the
    /// curve (KL to a mixture grows as the mixture moves away), so this equals the package's mean of the
    /// areas under y(x) and x(y).
    static func area(under curve: [CurvePoint]) -> Double {
        zip(curve, curve.dropFirst()).reduce(0) { $0 + ($1.0.x - $1.1.x) * ($1.0.y + $1.1.y) / 2 }
    }

    static func histogram(_ assignments: ArraySlice<Int>, clusters: Int) -> [Double] {
        var counts = [Double](repeating: 0, count: clusters)
        for c in assignments { counts[c] += 1 }
        return counts.map { $0 / Double(assignments.count) }
    }
}
