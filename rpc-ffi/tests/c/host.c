/*
 * A C host for the tests: one rpc_conn, driven by lines on stdin, answering one line each on
 * stdout, so a test can restart the server between calls and watch this process survive.
 *
 *   host TARGET RUNTIME_DIR|- TIMEOUT_MS
 *
 * Prints "ready" once connected (or "connect-failed MESSAGE" and exits 1). Then per line:
 *   METHOD JSON      -> "ok RESULT" or "err CODE MESSAGE"
 *   threads N M      -> N threads on the one handle, each M kv.set + kv.get of its own keys:
 *                       "ok threads" when every answer is right, else "err threads DETAIL"
 * It keeps SIGPIPE's default action (checked at start): a write to a dead server that raised
 * SIGPIPE would kill it, exit status 141.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"

static rpc_conn *conn;
static uint32_t timeout_ms;

static void answer(int status, char *result, char *error) {
    if (status == RPC_OK) {
        printf("ok %s\n", result ? result : "(null)");
    } else {
        printf("err %d %s\n", status, error ? error : "(null)");
    }
    fflush(stdout);
    rpc_free(result);
    rpc_free(error);
}

struct worker {
    int index;
    int calls;
    char failure[512];
};

/* One thread's share: kv.set then kv.get of keys only it uses, checking every answer. */
static void *work(void *arg) {
    struct worker *w = arg;
    for (int j = 0; j < w->calls && w->failure[0] == '\0'; j++) {
        char args[128], expected[64];
        char *result = NULL, *error = NULL;
        snprintf(args, sizeof args, "{\"key\":\"t%d-%d\",\"value\":\"v%d-%d\"}", w->index, j,
                 w->index, j);
        int status = rpc_call(conn, "kv.set", args, timeout_ms, &result, &error);
        if (status != RPC_OK || strcmp(result, "{\"Ok\":null}") != 0) {
            snprintf(w->failure, sizeof w->failure, "thread %d set %d: %d %s", w->index, j,
                     status, status == RPC_OK ? result : error);
        }
        rpc_free(result);
        rpc_free(error);
        if (w->failure[0] != '\0') {
            break;
        }
        snprintf(args, sizeof args, "{\"key\":\"t%d-%d\"}", w->index, j);
        snprintf(expected, sizeof expected, "\"v%d-%d\"", w->index, j);
        status = rpc_call(conn, "kv.get", args, timeout_ms, &result, &error);
        if (status != RPC_OK || strcmp(result, expected) != 0) {
            snprintf(w->failure, sizeof w->failure, "thread %d get %d: %d %s", w->index, j,
                     status, status == RPC_OK ? result : error);
        }
        rpc_free(result);
        rpc_free(error);
    }
    return NULL;
}

static void threads(int count, int calls) {
    pthread_t ids[64];
    struct worker workers[64];
    if (count < 1 || count > 64) {
        printf("err threads bad thread count %d\n", count);
        fflush(stdout);
        return;
    }
    for (int i = 0; i < count; i++) {
        workers[i] = (struct worker){.index = i, .calls = calls};
        if (pthread_create(&ids[i], NULL, work, &workers[i]) != 0) {
            printf("err threads cannot start thread %d\n", i);
            fflush(stdout);
            exit(3);
        }
    }
    const char *failure = NULL;
    for (int i = 0; i < count; i++) {
        pthread_join(ids[i], NULL);
        if (failure == NULL && workers[i].failure[0] != '\0') {
            failure = workers[i].failure;
        }
    }
    if (failure) {
        printf("err threads %s\n", failure);
    } else {
        printf("ok threads\n");
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: host TARGET RUNTIME_DIR|- TIMEOUT_MS\n");
        return 2;
    }
    struct sigaction pipe_action;
    if (sigaction(SIGPIPE, NULL, &pipe_action) != 0 || pipe_action.sa_handler != SIG_DFL) {
        printf("err sigpipe is not at its default action\n");
        return 2;
    }
    const char *runtime_dir = strcmp(argv[2], "-") == 0 ? NULL : argv[2];
    timeout_ms = (uint32_t)strtoul(argv[3], NULL, 10);

    char *error = NULL;
    conn = rpc_connect(argv[1], runtime_dir, 0, &error);
    if (conn == NULL) {
        printf("connect-failed %s\n", error ? error : "(null)");
        rpc_free(error);
        return 1;
    }
    printf("ready\n");
    fflush(stdout);

    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    while ((len = getline(&line, &size, stdin)) > 0) {
        if (line[len - 1] == '\n') {
            line[len - 1] = '\0';
        }
        int count, calls;
        if (sscanf(line, "threads %d %d", &count, &calls) == 2) {
            threads(count, calls);
            continue;
        }
        char *space = strchr(line, ' ');
        const char *args = "{}";
        if (space) {
            *space = '\0';
            args = space + 1;
        }
        char *result = NULL;
        error = NULL;
        int status = rpc_call(conn, line, args, timeout_ms, &result, &error);
        answer(status, result, error);
    }
    free(line);
    rpc_close(conn);
    return 0;
}
