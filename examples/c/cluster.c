/* cluster.c: a 3-node dkv cluster inside this process, through the C API.
 *
 * Starts three nodes (N=3, W=2, R=2), writes a key at QUORUM, stops one
 * node, and reads the key back at QUORUM from the two that are left.
 *
 *   cargo build -p dkv-ffi
 *   cc -std=c11 -Wall -Wextra -Werror -Iinclude examples/c/cluster.c \
 *      -Ltarget/debug -ldkv -Wl,-rpath,$PWD/target/debug -o cluster
 *   ./cluster [data dir]
 */
/* nanosleep and mkdtemp are POSIX, not C11: ask for them. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dkv.h"

/* Prints the failed call and libdkv's message, then exits. */
#define TRY(call)                                                           \
    do {                                                                    \
        dkv_status s_ = (call);                                             \
        if (s_ != DKV_STATUS_OK) {                                          \
            fprintf(stderr, "%s: %s: %s\n", #call, dkv_status_name(s_),    \
                    dkv_last_error());                                      \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

/* A 127.0.0.1 port that was free a moment ago. */
static unsigned short free_port(void) {
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        perror("free_port");
        exit(1);
    }
    close(fd);
    return ntohs(addr.sin_port);
}

/* Waits up to 10 s until `node` sees both of its peers up and its links
 * to them connected (a peer is presumed up from the start; the link is
 * what carries the first write). */
static void wait_until_connected(dkv_node *node) {
    for (int attempt = 0; attempt < 500; attempt++) {
        dkv_cluster_status status;
        TRY(dkv_node_status(node, 0, &status));
        int up = 0;
        for (size_t i = 0; i < status.peer_count; i++)
            up += status.peers[i].up && status.peers[i].connected;
        dkv_cluster_status_free(&status);
        if (up == 2) return;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "the nodes did not see each other within 10 s\n");
    exit(1);
}

int main(int argc, char **argv) {
    char dir[4096] = "/tmp/dkv-example-XXXXXX";
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s", argv[1]);
    } else if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    printf("libdkv %s, data under %s\n", dkv_version(), dir);

    char client_addr[3][32], peer_addr[3][32];
    for (int i = 0; i < 3; i++) {
        snprintf(client_addr[i], sizeof client_addr[i], "127.0.0.1:%u", free_port());
        snprintf(peer_addr[i], sizeof peer_addr[i], "127.0.0.1:%u", free_port());
    }
    dkv_node *nodes[3];
    for (uint32_t id = 1; id <= 3; id++) {
        char data[4200];
        snprintf(data, sizeof data, "%s/node-%u", dir, id);
        dkv_node_config *config = NULL;
        TRY(dkv_node_config_new(&config));
        TRY(dkv_node_config_set_node_id(config, id));
        TRY(dkv_node_config_set_data_dir(config, data));
        for (uint32_t m = 1; m <= 3; m++)
            TRY(dkv_node_config_add_node(config, m, client_addr[m - 1], peer_addr[m - 1]));
        TRY(dkv_node_config_set_replication(config, 3, 2, 2));
        TRY(dkv_node_config_set_timeouts(config, 1000, 100, 1000));
        TRY(dkv_node_start(config, &nodes[id - 1]));
        dkv_node_config_free(config);
        printf("node %u listening on %s\n", id, client_addr[id - 1]);
    }
    for (int i = 0; i < 3; i++) wait_until_connected(nodes[i]);

    const char *addrs[3] = {client_addr[0], client_addr[1], client_addr[2]};
    dkv_client *client = NULL;
    TRY(dkv_client_connect(addrs, 3, 2000, &client));

    const char *key = "greeting", *value = "hello from C";
    TRY(dkv_put(client, (const uint8_t *)key, strlen(key), (const uint8_t *)value,
                strlen(value), DKV_CONSISTENCY_QUORUM, 0));
    printf("put %s = \"%s\" at QUORUM\n", key, value);

    TRY(dkv_node_stop(nodes[0]));
    printf("stopped node 1\n");

    dkv_buf got = {NULL, 0};
    TRY(dkv_get(client, (const uint8_t *)key, strlen(key), DKV_CONSISTENCY_QUORUM, 0, &got));
    printf("get %s at QUORUM with node 1 down = \"%.*s\"\n", key, (int)got.len,
           (const char *)got.data);
    dkv_buf_free(&got);

    dkv_status all = dkv_get(client, (const uint8_t *)key, strlen(key), DKV_CONSISTENCY_ALL, 0, &got);
    printf("get %s at ALL with node 1 down: %s\n", key, dkv_status_name(all));

    dkv_client_free(client);
    for (int i = 0; i < 3; i++) dkv_node_free(nodes[i]);
    return 0;
}
