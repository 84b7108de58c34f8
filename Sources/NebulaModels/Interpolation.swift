import Foundation

/// Spherical interpolation between `a` and `b`, row by row (`width` values a row): each row moves along
/// the great circle at its norm, so normalised latents stay normalised. Falls back to a straight line when
/// two rows are (anti)parallel.
public func slerpRows(_ a: [Float], _ b: [Float], width: Int, fraction t: Float) -> [Float] {
    precondition(a.count == b.count && a.count % width == 0, "slerpRows: sizes \(a.count), \(b.count) with width \(width)")
    var out = [Float](repeating: 0, count: a.count)
    for row in stride(from: 0, to: a.count, by: width) {
        var dot: Float = 0, na: Float = 0, nb: Float = 0
        for j in row..<(row + width) { dot += a[j] * b[j]; na += a[j] * a[j]; nb += b[j] * b[j] }
        let cosine = dot / max((na * nb).squareRoot(), 1e-12)
        let omega = acos(min(max(cosine, -1), 1))
        if sin(omega) < 1e-4 {
            for j in row..<(row + width) { out[j] = (1 - t) * a[j] + t * b[j] }
        } else {
            let (wa, wb) = (sin((1 - t) * omega) / sin(omega), sin(t * omega) / sin(omega))
            for j in row..<(row + width) { out[j] = wa * a[j] + wb * b[j] }
        }
    }
    return out
}
