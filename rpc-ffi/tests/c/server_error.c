/*
 * A call the server answers with an error, through the C ABI: a `kv.list` whose answer is
 * larger than the server's frame limit. One line per call, "CASE CODE TEXT", where TEXT is the
 * result or the error string; the Rust test (server_error.rs) says what each must give.
 *
 *   server_error RUNTIME_DIR     (a server named rpc is running there with --max-frame 4096)
 */
#include <stdio.h>
#include <stdlib.h>

#include "call_case.h"
#include "rpc.h"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: server_error RUNTIME_DIR\n");
        return 2;
    }
    char *error = NULL;
    rpc_conn *conn = rpc_connect("rpc", argv[1], 0, &error);
    if (!conn) {
        printf("connect null %s\n", error ? error : "(null)");
        rpc_free(error);
        return 1;
    }
    /* 30 keys of 200 bytes: each set fits in 4 KiB, the list of them does not. */
    char args[512];
    for (int i = 0; i < 30; i++) {
        snprintf(args, sizeof args, "{\"key\":\"%0200d\",\"value\":\"v\"}", i);
        char *set_error = NULL;
        int status = rpc_call(conn, "kv.set", args, 0, NULL, &set_error);
        if (status != RPC_OK) {
            printf("set %d %s\n", status, set_error ? set_error : "(null)");
            rpc_free(set_error);
            rpc_close(conn);
            return 1;
        }
    }
    call_case("list", conn, "kv.list", "{\"prefix\":\"\"}", 0);
    /* The error ended that call only: the handle goes on. */
    call_case("after", conn, "kv.get", "{\"key\":\"absent\"}", 0);
    rpc_close(conn);
    printf("done\n");
    return 0;
}
