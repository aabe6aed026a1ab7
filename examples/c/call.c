/*
 * Calls the built-in kv service of an rpc-server through librpc_ffi: kv.set, then kv.get,
 * and prints the value.
 *
 * Build and run, from the repository root (with rpc-server running):
 *   cargo build -p rpc-ffi
 *   cc examples/c/call.c -I rpc-ffi/include -L target/debug -lrpc_ffi \
 *      -Wl,-rpath,"$PWD/target/debug" -o target/call
 *   ./target/call                # the server named rpc in the default runtime directory
 *   ./target/call unix:/run/user/1000/rpc.sock    # or a server name, or an endpoint
 *
 * A second argument names the runtime directory to find a server name in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

/* Prints a failed call's code and message and frees the message. */
static int fail(const char *what, int status, char *error) {
    fprintf(stderr, "call: %s failed (code %d): %s\n", what, status, error ? error : "");
    rpc_free(error);
    return 1;
}

int main(int argc, char **argv) {
    const char *target = argc > 1 ? argv[1] : "rpc"; /* rpc-server's default name */
    const char *runtime_dir = argc > 2 ? argv[2] : NULL;
    char *error = NULL;
    char *result = NULL;

    rpc_conn *conn = rpc_connect(target, runtime_dir, 0, &error);
    if (conn == NULL) {
        fprintf(stderr, "call: cannot connect to %s: %s\n", target, error ? error : "");
        rpc_free(error);
        return 1;
    }

    int status = rpc_call(conn, "kv.set", "{\"key\":\"greeting\",\"value\":\"hello from C\"}", 0,
                          &result, &error);
    if (status != RPC_OK) {
        rpc_close(conn);
        return fail("kv.set", status, error);
    }
    /* kv.set returns a Result: {"Ok":<the previous value or null>}, or {"Err":...} (the store
       is full), which is a value like any other, so the call itself succeeded. */
    if (strncmp(result, "{\"Ok\"", 5) != 0) {
        fprintf(stderr, "call: kv.set returned an error: %s\n", result);
        rpc_free(result);
        rpc_close(conn);
        return 1;
    }
    rpc_free(result);

    status = rpc_call(conn, "kv.get", "{\"key\":\"greeting\"}", 0, &result, &error);
    if (status != RPC_OK) {
        rpc_close(conn);
        return fail("kv.get", status, error);
    }
    printf("%s\n", result); /* the value as JSON: "hello from C" */
    rpc_free(result);

    rpc_close(conn);
    return 0;
}
