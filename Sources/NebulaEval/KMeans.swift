import NebulaTensor

/// Lloyd's k-means with k-means++ seeding (Arthur & Vassilvitskii 2007), restarted several times from
/// one seeded generator, keeping the clustering with the smallest within-cluster sum of squares.
/// Distances come from one BLAS product per iteration: ‖x − c‖² = ‖x‖² + ‖c‖² − 2 x·c.
///
/// ```swift
/// let clustering = KMeans(points: features, clusters: 50, seed: 27)
/// clustering.assignments            // cluster of each point, 0..<50
/// ```
public struct KMeans: Sendable {
    /// The cluster of each point.
    public let assignments: [Int]
    /// The cluster centres, one per row.
    public let centroids: [[Float]]
    /// Sum of squared distances from each point to its centre.
    public let inertia: Double

    /// - Parameters:
    ///   - restarts: runs from fresh seeds; the best one is kept (mauve-text's `kmeans_num_redo`: 5).
    ///   - maxIterations: per run; a run stops earlier once no point changes cluster.
    public init(points: [[Float]], clusters: Int, restarts: Int = 5, maxIterations: Int = 500, seed: UInt64 = 0) {
        let fit = Self.fit(
            RowMatrix(stacking: points), clusters: clusters, restarts: restarts,
            maxIterations: maxIterations, seed: seed)
        assignments = fit.assignments
        centroids = (0..<clusters).map { Array(fit.centroids.row($0)) }
        inertia = fit.inertia
    }

    struct Run {
        var assignments: [Int]
        var centroids: RowMatrix
        var inertia: Double
    }

    static func fit(_ points: RowMatrix, clusters k: Int, restarts: Int, maxIterations: Int, seed: UInt64) -> Run {
        precondition((1...points.rows).contains(k), "KMeans: \(k) clusters for \(points.rows) points")
        var generator = SeededGenerator(seed: seed)
        let norms = points.squaredRowNorms
        var best: Run?
        for _ in 0..<max(restarts, 1) {
            let run = lloyd(
                points, norms: norms, from: seeds(points, norms: norms, count: k, generator: &generator),
                maxIterations: maxIterations)
            if best == nil || run.inertia < best!.inertia { best = run }
        }
        return best!
    }

    /// k-means++: the first centre uniformly, each next one with probability proportional to the
    /// squared distance from the nearest centre chosen so far.
    static func seeds(_ points: RowMatrix, norms: [Float], count k: Int, generator: inout SeededGenerator) -> RowMatrix {
        var chosen = [generator.nextInt(below: points.rows)]
        var nearest = [Double](repeating: .infinity, count: points.rows)
        while chosen.count < k {
            let latest = RowMatrix(rows: 1, columns: points.columns, values: Array(points.row(chosen.last!)))
            let distances = squaredDistances(points, norms: norms, to: latest)
            for i in 0..<points.rows { nearest[i] = min(nearest[i], Double(distances.values[i])) }
            let total = nearest.reduce(0, +)
            var target = generator.nextDouble() * total, next = 0
            if total > 0 {
                while next < points.rows - 1 && (target >= nearest[next] || nearest[next] == 0) {
                    target -= nearest[next]
                    next += 1
                }
            } else {
                next = generator.nextInt(below: points.rows)  // all points coincide with a centre
            }
            chosen.append(next)
        }
        return RowMatrix(rows: k, columns: points.columns, values: chosen.flatMap { points.row($0) })
    }

    /// Alternates assigning each point to its nearest centre and moving each centre to its points' mean.
    /// A cluster left empty takes over the point farthest from its own centre.
    static func lloyd(_ points: RowMatrix, norms: [Float], from start: RowMatrix, maxIterations: Int) -> Run {
        let k = start.rows, d = points.columns
        var centroids = start
        var assignments = [Int](repeating: -1, count: points.rows)
        var distance = [Float](repeating: 0, count: points.rows)
        for _ in 0..<max(maxIterations, 1) {
            let distances = squaredDistances(points, norms: norms, to: centroids)
            var changed = false
            for i in 0..<points.rows {
                var bestCluster = 0, bestDistance = Float.infinity
                for c in 0..<k where distances.values[i * k + c] < bestDistance {
                    bestDistance = distances.values[i * k + c]
                    bestCluster = c
                }
                if assignments[i] != bestCluster { assignments[i] = bestCluster; changed = true }
                distance[i] = max(bestDistance, 0)
            }
            var counts = [Int](repeating: 0, count: k)
            for c in assignments { counts[c] += 1 }
            // Empty clusters take the points farthest from their centres, from clusters that keep one.
            if counts.contains(0) {
                var candidates = distance.indices.sorted { distance[$0] > distance[$1] }[...]
                for c in 0..<k where counts[c] == 0 {
                    while counts[assignments[candidates.first!]] < 2 { candidates = candidates.dropFirst() }
                    let farthest = candidates.removeFirst()
                    counts[assignments[farthest]] -= 1
                    assignments[farthest] = c
                    counts[c] = 1
                    changed = true
                }
            }
            if !changed { break }
            centroids = RowMatrix(rows: k, columns: d)
            for (i, c) in assignments.enumerated() {
                for j in 0..<d { centroids.values[c * d + j] += points.values[i * d + j] }
            }
            for c in 0..<k {
                let scale = 1 / Float(counts[c])
                for j in 0..<d { centroids.values[c * d + j] *= scale }
            }
        }
        let inertia = zip(0..<points.rows, assignments).reduce(0.0) { sum, pair in
            sum + Double(squaredDistance(points.row(pair.0), centroids.row(pair.1)))
        }
        return Run(assignments: assignments, centroids: centroids, inertia: inertia)
    }

    /// ‖x − c‖² for every point (rows) and centre (columns).
    static func squaredDistances(_ points: RowMatrix, norms: [Float], to centres: RowMatrix) -> RowMatrix {
        var distances = points.times(centres, transposingOther: true)
        let centreNorms = centres.squaredRowNorms, k = centres.rows
        for i in 0..<points.rows {
            for c in 0..<k { distances.values[i * k + c] = norms[i] + centreNorms[c] - 2 * distances.values[i * k + c] }
        }
        return distances
    }

    private static func squaredDistance(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
    }
}
