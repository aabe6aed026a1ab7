/*
 * How the C tests print a call, one line per case: "CASE CODE TEXT", where CODE is the status
 * rpc_call returned and TEXT the result or the error string; "CASE CODE
 * result-and-error-mismatch" when not exactly one of the two was set. The Rust side of each test
 * says what each case must give.
 */
#ifndef RPC_TESTS_CALL_CASE_H
#define RPC_TESTS_CALL_CASE_H

#include <stdint.h>
#include <stdio.h>

#include "rpc.h"

static inline void call_case(const char *name, rpc_conn *conn, const char *method,
                             const char *args, uint32_t timeout_ms) {
    char *result = NULL, *error = NULL;
    int status = rpc_call(conn, method, args, timeout_ms, &result, &error);
    /* Exactly one of the two is set: the result on success, the error otherwise. */
    if ((status == RPC_OK) != (result != NULL) || (status == RPC_OK) == (error != NULL)) {
        printf("%s %d result-and-error-mismatch\n", name, status);
    } else {
        printf("%s %d %s\n", name, status, status == RPC_OK ? result : error);
    }
    rpc_free(result);
    rpc_free(error);
}

#endif
