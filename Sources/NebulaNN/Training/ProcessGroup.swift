import Foundation
import NebulaTensor

/// The processes of a data-parallel run (MPI ranks): each computes the gradients of its share of every
/// global batch, and `allreduceSum` adds their buffers so every rank takes the same optimizer step.
/// `nebula` gets one from `NebulaMPI` when built with MPI and started by `mpirun`; without it a run is one process.
public protocol ProcessGroup: AnyObject, Sendable {
    /// This process's index, 0..<size; rank 0 alone writes logs, plots and checkpoints.
    var rank: Int { get }
    /// The number of processes.
    var size: Int { get }
    /// Replaces `buffer` on every rank with the element-wise sum of every rank's `buffer`.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>)
    /// Ends every process of the group with `code` (an error on one rank must not leave the others waiting).
    func abort(code: Int32) -> Never
}

extension ProcessGroup {
    /// Sums the gradients of `parameters` over the ranks, with `extra` values (the loss, a stop flag) in the
    /// same message: one allreduce of one flat buffer per step. A parameter no rank has a gradient for keeps
    /// none (as in one process, the optimizer skips it); one that some rank lacks counts zeros there.
    /// Returns the summed extras.
    public func allreduceGradients(_ parameters: [Tensor], extra: [Float]) -> [Float] {
        let count = parameters.count
        let total = parameters.reduce(0) { $0 + $1.count }
        var flat = [Float](repeating: 0, count: count + total + extra.count)  // [has gradient] [gradients] [extra]
        flat.withUnsafeMutableBufferPointer { buffer in
            var offset = count
            for (i, p) in parameters.enumerated() {
                if let g = p.gradData {
                    buffer[i] = 1
                    g.withUnsafeBufferPointer {
                        _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + p.count)]).update(fromContentsOf: $0)
                    }
                }
                offset += p.count
            }
            for (i, value) in extra.enumerated() { buffer[offset + i] = value }
            allreduceSum(buffer)
            offset = count
            for (i, p) in parameters.enumerated() {
                if buffer[i] > 0 {
                    p.withGradBuffer {
                        _ = $0.update(fromContentsOf: UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + p.count)]))
                    }
                } else {
                    p.zeroGrad()
                }
                offset += p.count
            }
        }
        return Array(flat.suffix(extra.count))
    }
}
