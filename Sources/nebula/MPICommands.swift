import ArgumentParser
import Foundation
import NebulaNN

#if canImport(NebulaMPI)
    /// `mpirun -np N nebula allreduce-bench`: how long one allreduce of a model's gradients takes between the ranks
    /// (the per-step communication of data-parallel training), for buffers of the given sizes. MPI builds only.
    struct AllreduceBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "allreduce-bench",
            abstract: "Time MPI_Allreduce of gradient-sized float buffers between the ranks of mpirun (MPI builds only).")
        @Option(
            parsing: .upToNextOption,
            help: "Buffer sizes in floats (default: the shipped bundle's LM, autoencoder and denoiser, and GPT-2 small).")
        var floats: [Int] = [3_480_576, 7_264_928, 8_287_040, 124_439_808]
        @Option(help: "Timed allreduces per size (after one warm-up).") var repeats = 10

        func run() throws {
            try reportingErrors {
                guard let group = processGroup, group.size > 1 else { throw CommandError("run it under mpirun with 2 or more ranks") }
                for count in floats {
                    var buffer = [Float](repeating: 1, count: count)
                    buffer.withUnsafeMutableBufferPointer { group.allreduceSum($0) }  // warm-up
                    var times: [Double] = []
                    for _ in 0..<repeats {
                        let start = Date()
                        buffer.withUnsafeMutableBufferPointer { group.allreduceSum($0) }
                        times.append(Date().timeIntervalSince(start))
                    }
                    let median = times.sorted()[times.count / 2]
                    // A ring allreduce moves 2(N−1)/N of the buffer through each rank's link.
                    let busBits = Double(count * 32) * 2 * Double(group.size - 1) / Double(group.size)
                    print(
                        String(
                            format: "%12d floats (%7.1f MB): median %8.2f ms over %d, bus bandwidth %.2f Gbit/s", count,
                            Double(count * 4) / 1e6, 1000 * median, repeats, busBits / median / 1e9))
                }
            }
        }
    }

    let mpiCommands: [any ParsableCommand.Type] = [AllreduceBench.self]
#else
    let mpiCommands: [any ParsableCommand.Type] = []
#endif
