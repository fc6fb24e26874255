#ifndef PGVAULT_CZLIB_SHIM_H
#define PGVAULT_CZLIB_SHIM_H
#include <zlib.h>
#endif
