#ifndef PGVAULT_CARCHIVE_SHIM_H
#define PGVAULT_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>
#endif
