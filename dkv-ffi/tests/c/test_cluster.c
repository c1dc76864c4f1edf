/* test_cluster.c: a 3-node cluster (N=3, W=2, R=2) in this process,
 * configured from a cluster.conf file, survives one node's stop: QUORUM
 * reads and writes go on, ALL fails with UNAVAILABLE, and the survivors
 * report the stopped node down with hints pending for it.
 *
 * Usage: test_cluster <scratch dir> */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#define NODES 3

static dkv_node *nodes[NODES];
static char client_addrs[NODES][32];

static void start_cluster(const char *dir) {
    char conf_path[4200];
    snprintf(conf_path, sizeof conf_path, "%s/cluster.conf", dir);
    FILE *f = fopen(conf_path, "w");
    CHECK(f != NULL);
    fputs("cluster_name = c-test\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n", f);
    for (int i = 0; i < NODES; i++) {
        unsigned short client = free_port(), peer = free_port();
        snprintf(client_addrs[i], sizeof client_addrs[i], "127.0.0.1:%u", client);
        fprintf(f, "node %d 127.0.0.1:%u %u\n", i + 1, client, peer);
    }
    fclose(f);
    unsigned slow = slow_factor();
    for (int i = 0; i < NODES; i++) {
        char data[4200];
        snprintf(data, sizeof data, "%s/node-%d", dir, i + 1);
        dkv_node_config *config = NULL;
        OK(dkv_node_config_new(&config));
        OK(dkv_node_config_set_node_id(config, (uint32_t)i + 1));
        OK(dkv_node_config_set_cluster_conf(config, conf_path));
        OK(dkv_node_config_set_data_dir(config, data));
        OK(dkv_node_config_set_fsync(config, DKV_FSYNC_NEVER, 0));
        OK(dkv_node_config_set_timeouts(config, 1000 * slow, 50 * slow, 500 * slow));
        OK(dkv_node_start(config, &nodes[i]));
        dkv_node_config_free(config);
    }
}

/* Waits (bounded) until node `i` sees `peer` in the wanted state. */
static void wait_for_peer(int i, uint32_t peer, bool up, bool want_hints) {
    long long deadline = now_ms() + 20000LL * slow_factor();
    for (;;) {
        dkv_cluster_status status;
        OK(dkv_node_status(nodes[i], 0, &status));
        bool ok = status.peer_count == NODES - 1;
        for (size_t p = 0; p < status.peer_count; p++) {
            const dkv_peer_status *s = &status.peers[p];
            if (s->node_id == peer)
                ok = ok && s->up == up && s->connected == up && (!want_hints || s->hints_pending > 0);
            else
                ok = ok && s->up;
        }
        if (ok && want_hints) CHECK(status.hints_pending > 0);
        dkv_cluster_status_free(&status);
        if (ok) return;
        CHECK(now_ms() < deadline);
        sleep_ms(20);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <scratch dir>\n", argv[0]);
        return 2;
    }
    start_cluster(argv[1]);
    for (int i = 0; i < NODES; i++) wait_for_peer(i, (uint32_t)((i + 1) % NODES + 1), true, false);

    const char *addrs[NODES] = {client_addrs[0], client_addrs[1], client_addrs[2]};
    dkv_client *client = NULL;
    OK(dkv_client_connect(addrs, NODES, 5000 * slow_factor(), &client));
    char key[32], value[32];
    const int keys = 10;
    for (int i = 0; i < keys; i++) {
        int kn = snprintf(key, sizeof key, "key-%d", i);
        int vn = snprintf(value, sizeof value, "value-%d", i);
        OK(dkv_put(client, (uint8_t *)key, (size_t)kn, (uint8_t *)value, (size_t)vn,
                   DKV_CONSISTENCY_QUORUM, 0));
    }
    dkv_buf got;
    OK(dkv_get(client, (const uint8_t *)"key-3", 5, DKV_CONSISTENCY_ALL, 0, &got));
    CHECK(got.len == 7 && memcmp(got.data, "value-3", 7) == 0);
    dkv_buf_free(&got);

    /* Stop node 1, the one the client talks to. */
    OK(dkv_node_stop(nodes[0]));
    for (int i = 0; i < keys; i++) {
        int kn = snprintf(key, sizeof key, "key-%d", i);
        int vn = snprintf(value, sizeof value, "value-%d", i);
        OK(dkv_get(client, (uint8_t *)key, (size_t)kn, DKV_CONSISTENCY_QUORUM, 0, &got));
        CHECK(got.len == (size_t)vn && memcmp(got.data, value, (size_t)vn) == 0);
        dkv_buf_free(&got);
    }
    EXPECT(dkv_get(client, (const uint8_t *)"key-3", 5, DKV_CONSISTENCY_ALL, 0, &got),
           DKV_STATUS_UNAVAILABLE);
    ERROR_MENTIONS("UNAVAILABLE");
    CHECK(got.data == NULL);

    /* Writes go on at QUORUM, and leave hints for node 1. */
    wait_for_peer(1, 1, false, false);
    dkv_slice ks[2] = {{(const uint8_t *)"after-1", 7}, {(const uint8_t *)"after-2", 7}};
    dkv_slice vs[2] = {{(const uint8_t *)"x", 1}, {(const uint8_t *)"y", 1}};
    OK(dkv_put_many(client, ks, vs, 2, DKV_CONSISTENCY_QUORUM, 0));
    dkv_buf out[2];
    bool found[2];
    OK(dkv_get_many(client, ks, 2, DKV_CONSISTENCY_QUORUM, 0, out, found));
    CHECK(found[0] && found[1] && out[1].len == 1 && out[1].data[0] == 'y');
    dkv_buf_free(&out[0]);
    dkv_buf_free(&out[1]);
    wait_for_peer(1, 1, false, true);

    dkv_cluster_status status;
    OK(dkv_client_status(client, 0, &status));
    CHECK(status.node_id == 2 && status.replication_factor == 3 && status.peer_count == 2);
    CHECK(status.peers[0].node_id == 1 && !status.peers[0].up);
    dkv_cluster_status_free(&status);

    dkv_client_free(client);
    for (int i = 0; i < NODES; i++) dkv_node_free(nodes[i]);
    printf("test_cluster: %d checks passed\n", checks_passed);
    return 0;
}
