/*
 * Bad input through the C ABI, one line per case: "CASE CODE MESSAGE", where CODE is the
 * status rpc_call returned (for rpc_connect: "null" or "conn") and MESSAGE the error string,
 * or "(null)". The Rust test (bad_input.rs) says what each case must give.
 *
 *   bad_input RUNTIME_DIR     (a server named rpc is running there)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call_case.h"
#include "rpc.h"

static void connect_case(const char *name, const char *target, const char *runtime_dir) {
    char *error = NULL;
    rpc_conn *conn = rpc_connect(target, runtime_dir, 2000, &error);
    printf("%s %s %s\n", name, conn ? "conn" : "null", error ? error : "(null)");
    rpc_free(error);
    rpc_close(conn);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: bad_input RUNTIME_DIR\n");
        return 2;
    }
    const char *dir = argv[1];

    connect_case("connect-null-target", NULL, dir);
    connect_case("connect-not-utf8", "rp\xff", dir);
    connect_case("connect-bad-name", "no/slash", dir);
    connect_case("connect-bad-endpoint", "unix:relative.sock", dir);
    connect_case("connect-absent", "absent", dir);
    connect_case("connect-nothing-listening", "unix:/nonexistent/rpc.sock", NULL);
    /* No error out-pointer: NULL comes back and nothing is written. */
    printf("connect-no-error-pointer %s\n", rpc_connect("absent", dir, 0, NULL) ? "conn" : "null");

    char *error = NULL;
    rpc_conn *conn = rpc_connect("rpc", dir, 0, &error);
    if (conn == NULL) {
        printf("connect-failed %s\n", error ? error : "(null)");
        return 1;
    }

    call_case("null-conn", NULL, "kv.get", "{\"key\":\"k\"}", 0);
    call_case("null-method", conn, NULL, "{\"key\":\"k\"}", 0);
    call_case("null-args", conn, "kv.get", NULL, 0);
    call_case("method-not-utf8", conn, "kv.g\xc3", "{\"key\":\"k\"}", 0);
    call_case("args-not-utf8", conn, "kv.get", "{\"key\":\"\xff\"}", 0);
    call_case("no-dot", conn, "kv", "{}", 0);
    call_case("empty-method", conn, "kv.", "{}", 0);
    call_case("unknown-service", conn, "nosuch.get", "{}", 0);
    call_case("unknown-method", conn, "kv.nosuch", "{}", 0);
    call_case("not-json", conn, "kv.get", "{\"key\":", 0);
    call_case("wrong-type", conn, "kv.get", "{\"key\":3}", 0);
    call_case("missing-argument", conn, "kv.set", "{\"key\":\"k\"}", 0);
    call_case("deadline", conn, "echo.delay", "{\"ms\":3000}", 200);
    call_case("after-deadline", conn, "echo.ping", "{}", 0);

    /* NULL out-pointers: the call runs, nothing is written. */
    int status = rpc_call(conn, "kv.set", "{\"key\":\"k\",\"value\":\"v\"}", 0, NULL, NULL);
    printf("no-out-pointers %d\n", status);
    status = rpc_call(conn, "kv.nosuch", "{}", 0, NULL, NULL);
    printf("no-out-pointers-failing %d\n", status);
    char *result = NULL;
    status = rpc_call(conn, "kv.get", "{\"key\":\"k\"}", 0, &result, NULL);
    printf("no-error-pointer %d %s\n", status, result ? result : "(null)");
    rpc_free(result);

    /* Stale values in the out-pointers are replaced by NULL when not written. */
    result = (char *)&status;
    error = (char *)&status;
    status = rpc_call(conn, "kv.get", "{\"key\":\"k\"}", 0, &result, &error);
    printf("error-cleared %d %s\n", status, error == NULL ? "yes" : "no");
    rpc_free(result);
    result = (char *)&status;
    error = NULL;
    status = rpc_call(conn, "kv.nosuch", "{}", 0, &result, &error);
    printf("result-cleared %d %s\n", status, result == NULL ? "yes" : "no");
    rpc_free(error);

    rpc_free(NULL);
    rpc_close(NULL);
    rpc_close(conn);
    printf("done\n");
    return 0;
}
