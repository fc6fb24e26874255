#ifndef PGVAULT_CCRYPTO_SHIM_H
#define PGVAULT_CCRYPTO_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#endif
