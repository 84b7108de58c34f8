#include <cblas.h>
#ifdef __linux__
// mallopt: the engine tunes glibc's allocator to reuse freed activation buffers (see GEMM.swift).
#include <malloc.h>
#endif
