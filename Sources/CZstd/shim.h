#ifndef PGVAULT_CZSTD_SHIM_H
#define PGVAULT_CZSTD_SHIM_H

#include <zstd.h>
#include <zstd_errors.h>
#endif
