// Open MPI, as NebulaMPI uses it. MPI_COMM_WORLD, MPI_FLOAT and MPI_SUM are macros over global objects that
// Swift cannot import, so the calls that need them are wrapped here.
#include <mpi.h>

static inline int nebula_mpi_init(void) {
    int provided = 0;
    return MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
}
static inline int nebula_mpi_rank(void) { int rank = 0; MPI_Comm_rank(MPI_COMM_WORLD, &rank); return rank; }
static inline int nebula_mpi_size(void) { int size = 1; MPI_Comm_size(MPI_COMM_WORLD, &size); return size; }
static inline int nebula_mpi_allreduce_sum(float *buffer, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int nebula_mpi_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static inline int nebula_mpi_finalize(void) { return MPI_Finalize(); }
static inline double nebula_mpi_time(void) { return MPI_Wtime(); }
