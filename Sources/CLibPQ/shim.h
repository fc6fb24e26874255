#ifndef PGVAULT_CLIBPQ_SHIM_H
#define PGVAULT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#include <postgres_ext.h>

/* The PG_DIAG_* field codes are character-literal macros, which Swift does not
   import. Re-export them under the same meaning as typed constants. */
static const int PGV_DIAG_SQLSTATE = PG_DIAG_SQLSTATE;
static const int PGV_DIAG_SEVERITY = PG_DIAG_SEVERITY;
static const int PGV_DIAG_MESSAGE_PRIMARY = PG_DIAG_MESSAGE_PRIMARY;
static const int PGV_DIAG_MESSAGE_DETAIL = PG_DIAG_MESSAGE_DETAIL;
static const int PGV_DIAG_MESSAGE_HINT = PG_DIAG_MESSAGE_HINT;
static const int PGV_DIAG_CONTEXT = PG_DIAG_CONTEXT;
static const int PGV_DIAG_SCHEMA_NAME = PG_DIAG_SCHEMA_NAME;
static const int PGV_DIAG_TABLE_NAME = PG_DIAG_TABLE_NAME;
static const int PGV_DIAG_CONSTRAINT_NAME = PG_DIAG_CONSTRAINT_NAME;
#endif
