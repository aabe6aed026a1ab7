/*
 * Answers a client cannot use, through the C ABI, from a fake server (protocol_error.rs): one
 * line per call, "CASE CODE TEXT", where TEXT is the result or the error string; the Rust test
 * says what each must give.
 *
 *   protocol_error ENDPOINT     (unix:/path of the fake server)
 *
 * - "changed": the server's kv service is not the one its introspect service described.
 * - "wrong": kv.get answered with kv.delete's response.
 */
#include <stdio.h>
#include <stdlib.h>

#include "call_case.h"
#include "rpc.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: protocol_error ENDPOINT\n");
        return 2;
    }
    char *error = NULL;
    rpc_conn *conn = rpc_connect(argv[1], NULL, 0, &error);
    if (!conn) {
        printf("connect null %s\n", error ? error : "(null)");
        rpc_free(error);
        return 1;
    }
    call_case("changed", conn, "kv.get", "{\"key\":\"k\"}", 5000);
    call_case("wrong", conn, "kv.get", "{\"key\":\"k\"}", 5000);
    rpc_close(conn);
    printf("done\n");
    return 0;
}
