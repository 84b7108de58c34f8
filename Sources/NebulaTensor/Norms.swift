import Foundation

// Layer norm and RMS norm over the last dimension, fused, with hand-written backward passes.

/// Layer normalization over the last dimension: `(x − mean) / √(var + eps) · weight + bias`.
/// `weight` and `bias` are `[C]` (either may be nil: no affine part).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let width = x.shape.last!
    let rows = x.count / width
    if let weight { precondition(weight.shape == [width], "layerNorm: weight \(weight.shape) should be [\(width)]") }
    if let bias { precondition(bias.shape == [width], "layerNorm: bias \(bias.shape) should be [\(width)]") }
    var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
    let w = weight?.data, b = bias?.data
    var out = [Float](repeating: 0, count: x.count)
    x.data.withUnsafeBufferPointer { px in out.withUnsafeMutableBufferPointer { po in
        mean.withUnsafeMutableBufferPointer { pm in rstd.withUnsafeMutableBufferPointer { pr in
            let (px, po, pm, pr) = (px.baseAddress!, po.baseAddress!, pm.baseAddress!, pr.baseAddress!)
            Parallel.forRanges(rows, grain: 128) { range in
                for row in range {
                    let xr = px + row * width, yr = po + row * width
                    var s: Float = 0
                    for j in 0..<width { s += xr[j] }
                    let m = s / Float(width)
                    var v: Float = 0
                    for j in 0..<width { let d = xr[j] - m; v += d * d }
                    let r = 1 / sqrtf(v / Float(width) + eps)
                    pm[row] = m
                    pr[row] = r
                    for j in 0..<width { yr[j] = (xr[j] - m) * r * (w?[j] ?? 1) + (b?[j] ?? 0) }
                }
            }
        } }
    } }
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return Tensor.result(shape: x.shape, data: out, inputs: inputs) { o in
        let go = o.gradData!, xd = x.data
        x.accumulateGrad { pg in
            let pg = pg.baseAddress!
            Parallel.forRanges(rows, grain: 128) { range in
                for row in range {
                    let base = row * width, m = mean[row], r = rstd[row]
                    var meanG: Float = 0, meanGX: Float = 0
                    for j in 0..<width {
                        let g = go[base + j] * (w?[j] ?? 1)
                        meanG += g
                        meanGX += g * (xd[base + j] - m) * r
                    }
                    meanG /= Float(width)
                    meanGX /= Float(width)
                    for j in 0..<width {
                        let g = go[base + j] * (w?[j] ?? 1), xhat = (xd[base + j] - m) * r
                        pg[base + j] += r * (g - meanG - xhat * meanGX)
                    }
                }
            }
        }
        weight?.accumulateGrad { pw in
            for row in 0..<rows {
                let base = row * width, m = mean[row], r = rstd[row]
                for j in 0..<width { pw[j] += go[base + j] * (xd[base + j] - m) * r }
            }
        }
        bias?.accumulateGrad { pb in
            for row in 0..<rows { for j in 0..<width { pb[j] += go[row * width + j] } }
        }
    }
}

/// RMS normalization over the last dimension: `x / √(mean(x²) + eps) · weight`.
public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float = 1e-6) -> Tensor {
    let width = x.shape.last!
    let rows = x.count / width
    if let weight { precondition(weight.shape == [width], "rmsNorm: weight \(weight.shape) should be [\(width)]") }
    let w = weight?.data
    var rms = [Float](repeating: 0, count: rows)
    var out = [Float](repeating: 0, count: x.count)
    x.data.withUnsafeBufferPointer { px in out.withUnsafeMutableBufferPointer { po in rms.withUnsafeMutableBufferPointer { pr in
        let (px, po, pr) = (px.baseAddress!, po.baseAddress!, pr.baseAddress!)
        Parallel.forRanges(rows, grain: 128) { range in
            for row in range {
                let xr = px + row * width
                var s: Float = 0
                for j in 0..<width { s += xr[j] * xr[j] }
                let r = 1 / sqrtf(s / Float(width) + eps)
                pr[row] = r
                for j in 0..<width { po[row * width + j] = xr[j] * r * (w?[j] ?? 1) }
            }
        }
    } } }
    let inputs = [x] + [weight].compactMap { $0 }
    return Tensor.result(shape: x.shape, data: out, inputs: inputs) { o in
        let go = o.gradData!, xd = x.data
        x.accumulateGrad { pg in
            let pg = pg.baseAddress!
            Parallel.forRanges(rows, grain: 128) { range in
                for row in range {
                    let base = row * width, r = rms[row]
                    var dot: Float = 0
                    for j in 0..<width { dot += go[base + j] * (w?[j] ?? 1) * xd[base + j] }
                    let k = r * r * r * dot / Float(width)
                    for j in 0..<width { pg[base + j] += r * go[base + j] * (w?[j] ?? 1) - xd[base + j] * k }
                }
            }
        }
        weight?.accumulateGrad { pw in
            for row in 0..<rows {
                let base = row * width, r = rms[row]
                for j in 0..<width { pw[j] += go[base + j] * xd[base + j] * r }
            }
        }
    }
}
