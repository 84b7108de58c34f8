import Foundation

// Layer norm and RMS norm over the last dimension, fused, with hand-written backward passes.

/// Layer normalization over the last dimension: `(x − mean) / √(var + eps) · weight + bias`.
/// `weight` and `bias` are `[C]` (either may be nil: no affine part).
public func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let width = x.shape.last!
    let rows = x.count / width
    if let weight { precondition(weight.shape == [width], "layerNorm: weight \(weight.shape) should be [\(width)]") }
    if let bias { precondition(bias.shape == [width], "layerNorm: bias \(bias.shape) should be [\(width)]") }
    // Absent affine parts act as ones and zeros, so the loops below stay branch-free.
    let w = weight?.data ?? [Float](repeating: 1, count: width), b = bias?.data ?? [Float](repeating: 0, count: width)
    var mean = [Float](repeating: 0, count: rows), rstd = [Float](repeating: 0, count: rows)
    let out = [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
        x.data.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                b.withUnsafeBufferPointer { pb in
                    mean.withUnsafeMutableBufferPointer { pm in
                        rstd.withUnsafeMutableBufferPointer { pr in
                            let (px, po, pw, pb, pm, pr) = (
                                px.baseAddress!, buffer.baseAddress!, pw.baseAddress!, pb.baseAddress!, pm.baseAddress!, pr.baseAddress!
                            )
                            Parallel.forRanges(rows, grain: 128) { range in
                                for row in range {
                                    let xr = px + row * width, yr = po + row * width
                                    let m = laneSum(width) { xr[$0] } / Float(width)
                                    let v = laneSum(width) {
                                        let d = xr[$0] - m; return d * d
                                    }
                                    let r = 1 / (v / Float(width) + eps).squareRoot()
                                    pm[row] = m
                                    pr[row] = r
                                    for j in 0..<width { yr[j] = (xr[j] - m) * r * pw[j] + pb[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
        initialized = x.count
    }
    let inputs = [x] + [weight, bias].compactMap { $0 }
    return Tensor.result(shape: x.shape, data: out, inputs: inputs) { o in
        o.gradData!.withUnsafeBufferPointer { pgo in
            x.data.withUnsafeBufferPointer { px in
                w.withUnsafeBufferPointer { pw in
                    mean.withUnsafeBufferPointer { pm in
                        rstd.withUnsafeBufferPointer { pr in
                            let (go, xd, pw, pm, pr) = (
                                pgo.baseAddress!, px.baseAddress!, pw.baseAddress!, pm.baseAddress!, pr.baseAddress!
                            )
                            x.accumulateGrad { pg in
                                let pg = pg.baseAddress!
                                Parallel.forRanges(rows, grain: 128) { range in
                                    for row in range {
                                        let (g, xr, dx) = (go + row * width, xd + row * width, pg + row * width)
                                        let (m, r) = (pm[row], pr[row])
                                        let meanG = laneSum(width) { g[$0] * pw[$0] } / Float(width)
                                        let meanGX = laneSum(width) { g[$0] * pw[$0] * (xr[$0] - m) } * (r / Float(width))
                                        for j in 0..<width { dx[j] += r * (g[j] * pw[j] - meanG - (xr[j] - m) * r * meanGX) }
                                    }
                                }
                            }
                            weight?.accumulateGrad { gw in
                                let gw = gw.baseAddress!
                                for row in 0..<rows {
                                    let (g, xr, m, r) = (go + row * width, xd + row * width, pm[row], pr[row])
                                    for j in 0..<width { gw[j] += g[j] * (xr[j] - m) * r }
                                }
                            }
                            bias?.accumulateGrad { gb in
                                let gb = gb.baseAddress!
                                for row in 0..<rows {
                                    let g = go + row * width
                                    for j in 0..<width { gb[j] += g[j] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// RMS normalization over the last dimension: `x / √(mean(x²) + eps) · weight`.
public func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float = 1e-6) -> Tensor {
    let width = x.shape.last!
    let rows = x.count / width
    if let weight { precondition(weight.shape == [width], "rmsNorm: weight \(weight.shape) should be [\(width)]") }
    let w = weight?.data ?? [Float](repeating: 1, count: width)
    var rms = [Float](repeating: 0, count: rows)
    let out = [Float](unsafeUninitializedCapacity: x.count) { buffer, initialized in
        x.data.withUnsafeBufferPointer { px in
            w.withUnsafeBufferPointer { pw in
                rms.withUnsafeMutableBufferPointer { pr in
                    let (px, po, pw, pr) = (px.baseAddress!, buffer.baseAddress!, pw.baseAddress!, pr.baseAddress!)
                    Parallel.forRanges(rows, grain: 128) { range in
                        for row in range {
                            let (xr, yr) = (px + row * width, po + row * width)
                            var s: Float = 0
                            for j in 0..<width { s += xr[j] * xr[j] }
                            let r = 1 / (s / Float(width) + eps).squareRoot()
                            pr[row] = r
                            for j in 0..<width { yr[j] = xr[j] * r * pw[j] }
                        }
                    }
                }
            }
        }
        initialized = x.count
    }
    let inputs = [x] + [weight].compactMap { $0 }
    return Tensor.result(shape: x.shape, data: out, inputs: inputs) { o in
        o.gradData!.withUnsafeBufferPointer { pgo in
            x.data.withUnsafeBufferPointer { px in
                w.withUnsafeBufferPointer { pw in
                    rms.withUnsafeBufferPointer { pr in
                        let (go, xd, pw, pr) = (pgo.baseAddress!, px.baseAddress!, pw.baseAddress!, pr.baseAddress!)
                        x.accumulateGrad { pg in
                            let pg = pg.baseAddress!
                            Parallel.forRanges(rows, grain: 128) { range in
                                for row in range {
                                    let (g, xr, dx, r) = (go + row * width, xd + row * width, pg + row * width, pr[row])
                                    var dot: Float = 0
                                    for j in 0..<width { dot += g[j] * pw[j] * xr[j] }
                                    let k = r * r * r * dot / Float(width)
                                    for j in 0..<width { dx[j] += r * g[j] * pw[j] - xr[j] * k }
                                }
                            }
                        }
                        weight?.accumulateGrad { gw in
                            let gw = gw.baseAddress!
                            for row in 0..<rows {
                                let (g, xr, r) = (go + row * width, xd + row * width, pr[row])
                                for j in 0..<width { gw[j] += g[j] * xr[j] * r }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `Σ term(j)` for j in `0..<n`, in eight interleaved partial sums: a row reduction that runs at the speed of
/// independent adds instead of one serial chain (the order differs from a left-to-right sum by re-association only).
@inline(__always)
func laneSum(_ n: Int, _ term: (Int) -> Float) -> Float {
    var lanes = SIMD8<Float>()
    var j = 0
    while j + 8 <= n {
        lanes += SIMD8(term(j), term(j + 1), term(j + 2), term(j + 3), term(j + 4), term(j + 5), term(j + 6), term(j + 7))
        j += 8
    }
    var total = lanes.sum()
    while j < n { total += term(j); j += 1 }
    return total
}
