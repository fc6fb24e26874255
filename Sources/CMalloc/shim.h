#ifndef PGVAULT_CMALLOC_SHIM_H
#define PGVAULT_CMALLOC_SHIM_H
// glibc's mallopt() and malloc_trim(), to bound how much freed memory the heap keeps.
#include <malloc.h>
#endif
