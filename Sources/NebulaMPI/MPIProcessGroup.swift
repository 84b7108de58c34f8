import CMPI
import Foundation
import NebulaNN

/// The ranks of `mpirun -np N nebula …` as Nebula's ``ProcessGroup``: MPI_COMM_WORLD, gradients summed with
/// `MPI_Allreduce` in place. Built only with `NEBULA_MPI=1` (`make build-mpi`).
public final class MPIProcessGroup: ProcessGroup {
    public let rank: Int
    public let size: Int

    /// Initialises MPI when this process was started by `mpirun` (Open MPI's launcher sets
    /// `OMPI_COMM_WORLD_SIZE`); nil otherwise, so the same binary runs as one process too.
    public static func fromLauncher() -> MPIProcessGroup? {
        guard ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil else { return nil }
        guard nebula_mpi_init() == 0 else { return nil }
        let group = MPIProcessGroup(rank: Int(nebula_mpi_rank()), size: Int(nebula_mpi_size()))
        atexit { _ = nebula_mpi_finalize() }
        return group
    }

    private init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) {
        var offset = 0
        while offset < buffer.count {  // MPI counts are Int32: 2G floats a call at most
            let count = min(buffer.count - offset, Int(Int32.max))
            let status = nebula_mpi_allreduce_sum(buffer.baseAddress! + offset, Int32(count))
            if status != 0 { abort(code: 1) }
            offset += count
        }
    }

    public func abort(code: Int32) -> Never {
        _ = nebula_mpi_abort(code)
        exit(code)
    }
}
