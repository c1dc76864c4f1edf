/* check.h: the small test harness shared by libdkv's C tests.
 *
 * CHECK(cond) and EXPECT(call, status) print the failing line with
 * dkv_last_error() and exit(1), so the Rust test that runs these programs
 * sees a non-zero exit and the message. */
#ifndef DKV_TEST_CHECK_H
#define DKV_TEST_CHECK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dkv.h"

static int checks_passed = 0;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: %s\n",     \
                    __FILE__, __LINE__, #cond, dkv_last_error());            \
            exit(1);                                                         \
        }                                                                    \
        checks_passed++;                                                     \
    } while (0)

#define EXPECT(call, expected)                                               \
    do {                                                                     \
        dkv_status got_ = (call);                                            \
        if (got_ != (dkv_status)(expected)) {                                \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s; last error: %s\n", \
                    __FILE__, __LINE__, #call, dkv_status_name(got_),        \
                    dkv_status_name(expected), dkv_last_error());            \
            exit(1);                                                         \
        }                                                                    \
        checks_passed++;                                                     \
    } while (0)

#define OK(call) EXPECT(call, DKV_STATUS_OK)

/* The last error mentions `needle`. */
#define ERROR_MENTIONS(needle) CHECK(strstr(dkv_last_error(), (needle)) != NULL)

/* A 127.0.0.1 port that was free a moment ago. */
/* A free port below the kernel's ephemeral range (so no outgoing
 * connection takes it before a node binds it), from a per-process
 * sequence (so one program never picks the same port twice). */
static inline unsigned short free_port(void) {
    static unsigned next;
    unsigned base = (unsigned)getpid() * 7919u;
    for (int tries = 0; tries < 12000; tries++) {
        unsigned short port = (unsigned short)(20000u + (base + ++next * 13u) % 12000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr;
        memset(&addr, 0, sizeof addr);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        if (fd >= 0)
            close(fd);
        if (ok)
            return port;
    }
    perror("free_port");
    exit(1);
}

/* Milliseconds on a monotonic clock. */
static inline long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Under valgrind everything runs ~30x slower: DKV_TEST_SLOW=1 stretches
 * the cluster's timeouts so the failure detector does not misfire. */
static inline unsigned slow_factor(void) {
    const char *slow = getenv("DKV_TEST_SLOW");
    return slow && *slow && strcmp(slow, "0") != 0 ? 10 : 1;
}

#endif
