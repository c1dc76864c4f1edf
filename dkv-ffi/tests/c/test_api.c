/* test_api.c: every libdkv function against one in-process node, and
 * every error path: NULL handles, NULL or empty keys, bad lengths,
 * invalid UTF-8, bad consistency levels, bad configs, an unreachable
 * cluster, a silent server (timeout), values freed correctly, and a client
 * shared by several threads.
 *
 * Usage: test_api <scratch dir> */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <time.h>

#include "check.h"

static char dir[4096];

static const char *path_in(const char *name) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void test_version(void) {
    CHECK(dkv_abi_version() == DKV_ABI_VERSION);
    CHECK(strchr(dkv_version(), '.') != NULL);
    CHECK(strcmp(dkv_status_name(DKV_STATUS_OK), "OK") == 0);
    CHECK(strcmp(dkv_status_name(DKV_STATUS_UNAVAILABLE), "UNAVAILABLE") == 0);
    CHECK(strcmp(dkv_status_name(DKV_STATUS_PANIC), "PANIC") == 0);
    CHECK(strcmp(dkv_status_name(999), "UNKNOWN") == 0);
    CHECK(dkv_last_error() != NULL);
}

static void test_config_errors(void) {
    dkv_node_config *config = (dkv_node_config *)1;
    EXPECT(dkv_node_config_new(NULL), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("config_out is NULL");
    OK(dkv_node_config_new(&config));
    CHECK(config != NULL);
    CHECK(strcmp(dkv_last_error(), "") == 0); /* success clears it */

    EXPECT(dkv_node_config_set_node_id(NULL, 1), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("config is NULL");
    EXPECT(dkv_node_config_set_node_id(config, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_port(NULL, 1), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_data_dir(config, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_data_dir(config, "bad\xff\xfe"), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("UTF-8");
    EXPECT(dkv_node_config_set_cluster_conf(config, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_cluster_secret(config, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_cluster_secret(config, ""), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("may not be empty");
    EXPECT(dkv_node_config_set_cluster_secret(NULL, "s"), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_fsync(config, 99, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_fsync(config, DKV_FSYNC_PERIODIC, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_fsync(NULL, DKV_FSYNC_NEVER, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_fsync_window(NULL, 1000), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_fsync_window(config, 1000001), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("one second");
    EXPECT(dkv_node_config_set_replication(NULL, 1, 1, 1), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_set_timeouts(NULL, 1, 1, 1), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_add_node(config, 1, NULL, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_add_node(config, 1, "no port", NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_add_node(config, 0, "127.0.0.1:1", NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_config_add_node(config, 1, "127.0.0.1:60000", NULL),
           DKV_STATUS_INVALID_ARGUMENT); /* 60000 + 10000 is no port */
    EXPECT(dkv_node_config_add_node(NULL, 1, "127.0.0.1:1", NULL), DKV_STATUS_INVALID_ARGUMENT);

    dkv_node *node = (dkv_node *)1;
    EXPECT(dkv_node_start(NULL, &node), DKV_STATUS_INVALID_ARGUMENT);
    CHECK(node == NULL);
    EXPECT(dkv_node_start(config, NULL), DKV_STATUS_INVALID_ARGUMENT);

    /* A conf file that does not exist, then one with an error. */
    OK(dkv_node_config_set_data_dir(config, path_in("bad")));
    OK(dkv_node_config_set_cluster_conf(config, path_in("missing.conf")));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    CHECK(node == NULL);
    FILE *f = fopen(path_in("bad.conf"), "w");
    CHECK(f != NULL);
    fputs("replication_factor = 1\nwrite_quorum = 1\nread_quorum = 1\nnode 1 nonsense\n", f);
    fclose(f);
    OK(dkv_node_config_set_cluster_conf(config, path_in("bad.conf")));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    ERROR_MENTIONS("line 4");
    dkv_node_config_free(config);

    /* A node list: this node missing from it; quorums out of range; both
     * a list and a file. */
    OK(dkv_node_config_new(&config));
    OK(dkv_node_config_set_data_dir(config, path_in("bad")));
    OK(dkv_node_config_add_node(config, 2, "127.0.0.1:1", "127.0.0.1:2"));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    ERROR_MENTIONS("node 1 is not in the cluster");
    OK(dkv_node_config_set_node_id(config, 2));
    OK(dkv_node_config_set_replication(config, 3, 2, 2));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    ERROR_MENTIONS("replication_factor 3");
    OK(dkv_node_config_set_cluster_conf(config, path_in("bad.conf")));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    dkv_node_config_free(config);
    dkv_node_config_free(NULL);
}

/* A server that accepts connections (through the kernel's backlog) and
 * never answers. */
static int silent_server(unsigned short *port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    CHECK(listen(fd, 8) == 0 && getsockname(fd, (struct sockaddr *)&addr, &len) == 0);
    *port = ntohs(addr.sin_port);
    return fd;
}

static void test_connect_errors(void) {
    dkv_client *client = (dkv_client *)1;
    char addr[64];
    const char *addrs[2];
    EXPECT(dkv_client_connect(NULL, 1, 0, &client), DKV_STATUS_INVALID_ARGUMENT);
    CHECK(client == NULL);
    addrs[0] = "127.0.0.1:1";
    EXPECT(dkv_client_connect(addrs, 0, 0, &client), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_client_connect(addrs, 1, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);
    addrs[0] = NULL;
    EXPECT(dkv_client_connect(addrs, 1, 0, &client), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("addrs[0] is NULL");
    addrs[0] = "\xc3\x28:1";
    EXPECT(dkv_client_connect(addrs, 1, 0, &client), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("UTF-8");
    addrs[0] = "not an address";
    EXPECT(dkv_client_connect(addrs, 1, 0, &client), DKV_STATUS_INVALID_ARGUMENT);

    /* An unreachable cluster: nothing listens on either port. */
    char other[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", free_port());
    snprintf(other, sizeof other, "127.0.0.1:%u", free_port());
    addrs[0] = addr;
    addrs[1] = other;
    EXPECT(dkv_client_connect(addrs, 2, 500, &client), DKV_STATUS_UNAVAILABLE);
    ERROR_MENTIONS("no node reachable");
    CHECK(client == NULL);
    dkv_client_free(NULL);

    /* A server that never answers: the request times out. */
    unsigned short port;
    int fd = silent_server(&port);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    addrs[0] = addr;
    OK(dkv_client_connect(addrs, 1, 0, &client));
    dkv_buf value = {(uint8_t *)1, 1};
    long long started = now_ms();
    EXPECT(dkv_get(client, (const uint8_t *)"k", 1, DKV_CONSISTENCY_ONE, 200, &value),
           DKV_STATUS_TIMEOUT);
    CHECK(now_ms() - started < 5000 * (long long)slow_factor());
    CHECK(value.data == NULL && value.len == 0);
    dkv_client_free(client);
    close(fd);
}

static void test_data_path(dkv_client *client) {
    const uint8_t *k = (const uint8_t *)"key";
    dkv_buf value = {NULL, 0};
    bool existed = false;
    /* NULL handle, NULL/empty key, NULL value with a length, NULL out. */
    EXPECT(dkv_put(NULL, k, 3, k, 3, DKV_CONSISTENCY_QUORUM, 0), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("client is NULL");
    EXPECT(dkv_put(client, NULL, 3, k, 3, DKV_CONSISTENCY_QUORUM, 0), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("key is NULL");
    EXPECT(dkv_put(client, k, 0, k, 3, DKV_CONSISTENCY_QUORUM, 0), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("key must not be empty");
    EXPECT(dkv_put(client, k, 3, NULL, 3, DKV_CONSISTENCY_QUORUM, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_put(client, k, SIZE_MAX, k, 3, DKV_CONSISTENCY_QUORUM, 0),
           DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_get(NULL, k, 3, DKV_CONSISTENCY_ONE, 0, &value), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_get(client, NULL, 3, DKV_CONSISTENCY_ONE, 0, &value), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_get(client, k, 3, DKV_CONSISTENCY_ONE, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_delete(NULL, k, 3, DKV_CONSISTENCY_ONE, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_delete(client, NULL, 3, DKV_CONSISTENCY_ONE, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);
    /* Bad consistency: not a level, or more replicas than N = 1. */
    EXPECT(dkv_put(client, k, 3, k, 3, 0, 0), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("consistency 0");
    EXPECT(dkv_get(client, k, 3, -9, 0, &value), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_get(client, k, 3, 2, 0, &value), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("more than the 1 replicas");
    EXPECT(dkv_delete(client, k, 3, 0, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);

    /* Binary keys and values, an empty value, a large one. */
    const uint8_t bin_key[] = {'b', 0, 'k', '\r', '\n'};
    uint8_t bin_value[256];
    for (int i = 0; i < 256; i++) bin_value[i] = (uint8_t)i;
    OK(dkv_put(client, bin_key, sizeof bin_key, bin_value, sizeof bin_value,
               DKV_CONSISTENCY_QUORUM, 1000));
    OK(dkv_get(client, bin_key, sizeof bin_key, DKV_CONSISTENCY_ONE, 0, &value));
    CHECK(value.len == 256 && memcmp(value.data, bin_value, 256) == 0);
    dkv_buf_free(&value);
    CHECK(value.data == NULL && value.len == 0);
    dkv_buf_free(&value); /* freeing a freed (emptied) buffer is a no-op */
    dkv_buf_free(NULL);

    OK(dkv_put(client, k, 3, NULL, 0, DKV_CONSISTENCY_ALL, 0));
    value.data = (uint8_t *)1;
    OK(dkv_get(client, k, 3, DKV_CONSISTENCY_ALL, 0, &value));
    CHECK(value.data == NULL && value.len == 0);

    size_t big_len = 1 << 20;
    uint8_t *big = malloc(big_len);
    CHECK(big != NULL);
    memset(big, 'x', big_len);
    OK(dkv_put(client, k, 3, big, big_len, 1, 0));
    OK(dkv_get(client, k, 3, 1, 0, &value));
    CHECK(value.len == big_len && value.data[0] == 'x' && value.data[big_len - 1] == 'x');
    dkv_buf_free(&value);
    free(big);

    /* Missing keys, deletes. */
    value.data = (uint8_t *)1;
    EXPECT(dkv_get(client, (const uint8_t *)"nope", 4, DKV_CONSISTENCY_QUORUM, 0, &value),
           DKV_STATUS_NOT_FOUND);
    CHECK(value.data == NULL && value.len == 0);
    CHECK(strcmp(dkv_last_error(), "") == 0);
    OK(dkv_delete(client, k, 3, DKV_CONSISTENCY_QUORUM, 0, &existed));
    CHECK(existed);
    OK(dkv_delete(client, k, 3, DKV_CONSISTENCY_QUORUM, 0, &existed));
    CHECK(!existed);
    OK(dkv_delete(client, k, 3, DKV_CONSISTENCY_QUORUM, 0, NULL));
    EXPECT(dkv_get(client, k, 3, DKV_CONSISTENCY_QUORUM, 0, &value), DKV_STATUS_NOT_FOUND);
}

static void test_batches(dkv_client *client) {
    dkv_slice keys[3] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"b", 1},
                         {(const uint8_t *)"c", 1}};
    dkv_slice values[2] = {{(const uint8_t *)"1", 1}, {NULL, 0}};
    dkv_buf out[3];
    bool found[3];
    OK(dkv_put_many(client, keys, values, 2, DKV_CONSISTENCY_QUORUM, 0));
    OK(dkv_get_many(client, keys, 3, DKV_CONSISTENCY_QUORUM, 0, out, found));
    CHECK(found[0] && out[0].len == 1 && out[0].data[0] == '1');
    CHECK(found[1] && out[1].len == 0 && out[1].data == NULL);
    CHECK(!found[2] && out[2].data == NULL);
    for (int i = 0; i < 3; i++) dkv_buf_free(&out[i]);
    /* Nothing to do is fine, with NULL arrays. */
    OK(dkv_put_many(client, NULL, NULL, 0, DKV_CONSISTENCY_QUORUM, 0));
    OK(dkv_get_many(client, NULL, 0, DKV_CONSISTENCY_QUORUM, 0, NULL, NULL));
    /* Errors leave the outputs empty. */
    EXPECT(dkv_get_many(client, NULL, 2, DKV_CONSISTENCY_QUORUM, 0, out, found),
           DKV_STATUS_INVALID_ARGUMENT);
    CHECK(out[0].data == NULL && !found[0] && out[1].data == NULL);
    EXPECT(dkv_get_many(client, keys, 2, DKV_CONSISTENCY_QUORUM, 0, NULL, found),
           DKV_STATUS_INVALID_ARGUMENT);
    found[0] = true;
    out[0].data = (uint8_t *)1;
    EXPECT(dkv_get_many(client, keys, 2, DKV_CONSISTENCY_QUORUM, 0, out, NULL),
           DKV_STATUS_INVALID_ARGUMENT);
    CHECK(out[0].data == NULL);
    EXPECT(dkv_get_many(NULL, keys, 2, DKV_CONSISTENCY_QUORUM, 0, out, found),
           DKV_STATUS_INVALID_ARGUMENT);
    dkv_slice bad[2] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"", 0}};
    EXPECT(dkv_get_many(client, bad, 2, DKV_CONSISTENCY_QUORUM, 0, out, found),
           DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("keys[1] must not be empty");
    EXPECT(dkv_put_many(client, bad, values, 2, DKV_CONSISTENCY_QUORUM, 0),
           DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_put_many(client, keys, NULL, 2, DKV_CONSISTENCY_QUORUM, 0),
           DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_put_many(client, keys, values, 2, 0, 0), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_get_many(client, keys, 2, DKV_CONSISTENCY_QUORUM + 100, 0, out, found),
           DKV_STATUS_INVALID_ARGUMENT);
}

#define THREADS 4
#define PER_THREAD 50

/* Time to live, expiry, counters, scans and flushes. */
static void test_cache_tier(dkv_client *client) {
    const uint8_t *k = (const uint8_t *)"ttl-key";
    int64_t ttl = 0;
    EXPECT(dkv_ttl(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &ttl), DKV_STATUS_NOT_FOUND);
    CHECK(ttl == -2);
    OK(dkv_put_ttl(client, k, 7, (const uint8_t *)"v", 1, 100000, DKV_CONSISTENCY_QUORUM, 0));
    OK(dkv_ttl(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &ttl));
    CHECK(ttl > 99000 && ttl <= 100000);
    OK(dkv_expire(client, k, 7, 200000, DKV_CONSISTENCY_QUORUM, 0));
    OK(dkv_ttl(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &ttl));
    CHECK(ttl > 199000 && ttl <= 200000);
    bool changed = false;
    OK(dkv_persist(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &changed));
    CHECK(changed);
    OK(dkv_ttl(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &ttl));
    CHECK(ttl == -1);
    OK(dkv_persist(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, &changed));
    CHECK(!changed);
    EXPECT(dkv_persist(client, (const uint8_t *)"nope", 4, DKV_CONSISTENCY_QUORUM, 0, NULL),
           DKV_STATUS_NOT_FOUND);
    EXPECT(dkv_expire(client, (const uint8_t *)"nope", 4, 1000, DKV_CONSISTENCY_QUORUM, 0),
           DKV_STATUS_NOT_FOUND);
    EXPECT(dkv_expire(client, k, 7, 0, DKV_CONSISTENCY_QUORUM, 0), DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("at least 1 ms");
    EXPECT(dkv_ttl(client, k, 7, DKV_CONSISTENCY_QUORUM, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);

    /* A value that expires is gone once its time is up. */
    OK(dkv_put_ttl(client, (const uint8_t *)"brief", 5, (const uint8_t *)"x", 1, 50,
                   DKV_CONSISTENCY_QUORUM, 0));
    struct timespec pause = {0, 150 * 1000 * 1000};
    nanosleep(&pause, NULL);
    dkv_buf gone = {NULL, 0};
    EXPECT(dkv_get(client, (const uint8_t *)"brief", 5, DKV_CONSISTENCY_QUORUM, 0, &gone),
           DKV_STATUS_NOT_FOUND);

    int64_t n = 0;
    OK(dkv_incr_by(client, (const uint8_t *)"counter", 7, 5, DKV_CONSISTENCY_QUORUM, 0, &n));
    CHECK(n == 5);
    OK(dkv_incr_by(client, (const uint8_t *)"counter", 7, -7, DKV_CONSISTENCY_QUORUM, 0, &n));
    CHECK(n == -2);
    EXPECT(dkv_incr_by(client, k, 7, 1, DKV_CONSISTENCY_QUORUM, 0, &n),
           DKV_STATUS_INVALID_ARGUMENT);
    ERROR_MENTIONS("not an integer");
    EXPECT(dkv_incr_by(client, k, 7, 1, DKV_CONSISTENCY_QUORUM, 0, NULL),
           DKV_STATUS_INVALID_ARGUMENT);

    /* A scan finds every key of a pattern, page by page. */
    for (int i = 0; i < 25; i++) {
        char key[32];
        int len = snprintf(key, sizeof key, "scan:%d", i);
        OK(dkv_put(client, (const uint8_t *)key, (size_t)len, (const uint8_t *)"v", 1,
                   DKV_CONSISTENCY_QUORUM, 0));
    }
    uint64_t cursor = 0;
    size_t found = 0;
    int pages = 0;
    do {
        dkv_key_list page = {NULL, 0};
        OK(dkv_scan(client, cursor, (const uint8_t *)"scan:*", 6, 7, 0, &cursor, &page));
        for (size_t i = 0; i < page.len; i++) CHECK(memcmp(page.keys[i].data, "scan:", 5) == 0);
        found += page.len;
        dkv_key_list_free(&page);
        CHECK(page.keys == NULL && page.len == 0);
        pages++;
    } while (cursor != 0 && pages < 100);
    CHECK(found == 25);
    CHECK(pages >= 3);
    dkv_key_list_free(NULL);
    EXPECT(dkv_scan(client, 0, NULL, 0, 10, 0, NULL, NULL), DKV_STATUS_INVALID_ARGUMENT);

    /* A flush leaves nothing behind. */
    OK(dkv_flush(client, 0));
    dkv_key_list all = {NULL, 0};
    OK(dkv_scan(client, 0, NULL, 0, 100, 0, &cursor, &all));
    CHECK(all.len == 0 && cursor == 0);
    EXPECT(dkv_get(client, (const uint8_t *)"counter", 7, DKV_CONSISTENCY_QUORUM, 0, &gone),
           DKV_STATUS_NOT_FOUND);
    EXPECT(dkv_flush(NULL, 0), DKV_STATUS_INVALID_ARGUMENT);
}

static void *worker(void *arg) {
    dkv_client *client = arg;
    char key[32];
    for (int i = 0; i < PER_THREAD; i++) {
        int n = snprintf(key, sizeof key, "t%p-%d", (void *)&key, i);
        dkv_buf value = {NULL, 0};
        if (dkv_put(client, (uint8_t *)key, (size_t)n, (uint8_t *)key, (size_t)n,
                    DKV_CONSISTENCY_QUORUM, 0) != DKV_STATUS_OK ||
            dkv_get(client, (uint8_t *)key, (size_t)n, DKV_CONSISTENCY_QUORUM, 0, &value) !=
                DKV_STATUS_OK ||
            value.len != (size_t)n || memcmp(value.data, key, (size_t)n) != 0) {
            fprintf(stderr, "thread request failed: %s\n", dkv_last_error());
            dkv_buf_free(&value);
            return (void *)1;
        }
        dkv_buf_free(&value);
    }
    return NULL;
}

static void test_shared_client(dkv_client *client) {
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) CHECK(pthread_create(&threads[i], NULL, worker, client) == 0);
    for (int i = 0; i < THREADS; i++) {
        void *result = NULL;
        CHECK(pthread_join(threads[i], &result) == 0 && result == NULL);
    }
}

static void test_status(dkv_node *node, dkv_client *client) {
    dkv_cluster_status status;
    EXPECT(dkv_node_status(NULL, 0, &status), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_status(node, 0, NULL), DKV_STATUS_INVALID_ARGUMENT);
    OK(dkv_node_status(node, 0, &status));
    CHECK(status.node_id == 7 && status.replication_factor == 1 && status.peer_count == 0);
    CHECK(status.peers == NULL && status.hints_pending == 0);
    dkv_cluster_status_free(&status);
    dkv_cluster_status_free(&status);
    dkv_cluster_status_free(NULL);
    EXPECT(dkv_client_status(NULL, 0, &status), DKV_STATUS_INVALID_ARGUMENT);
    OK(dkv_client_status(client, 1000, &status));
    CHECK(status.node_id == 7 && status.write_quorum == 1 && status.read_quorum == 1);
    dkv_cluster_status_free(&status);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <scratch dir>\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    test_version();
    test_config_errors();
    test_connect_errors();

    dkv_node_config *config = NULL;
    dkv_node *node = NULL;
    OK(dkv_node_config_new(&config));
    OK(dkv_node_config_set_node_id(config, 7));
    OK(dkv_node_config_set_port(config, 0));
    OK(dkv_node_config_set_data_dir(config, path_in("node-7")));
    OK(dkv_node_config_set_fsync(config, DKV_FSYNC_PERIODIC, 50));
    OK(dkv_node_config_set_timeouts(config, 0, 0, 0));
    /* A group commit window spaces the fsyncs of DKV_FSYNC_ALWAYS only. */
    OK(dkv_node_config_set_fsync_window(config, 500));
    EXPECT(dkv_node_start(config, &node), DKV_STATUS_CONFIG);
    ERROR_MENTIONS("fsync always");
    CHECK(node == NULL);
    OK(dkv_node_config_set_fsync_window(config, 0));
    OK(dkv_node_start(config, &node));
    uint16_t port = 0;
    EXPECT(dkv_node_port(NULL, &port), DKV_STATUS_INVALID_ARGUMENT);
    EXPECT(dkv_node_port(node, NULL), DKV_STATUS_INVALID_ARGUMENT);
    OK(dkv_node_port(node, &port));
    CHECK(port != 0);

    /* A second node on the same port cannot start. */
    dkv_node *clash = (dkv_node *)1;
    OK(dkv_node_config_set_port(config, port));
    OK(dkv_node_config_set_data_dir(config, path_in("clash")));
    EXPECT(dkv_node_start(config, &clash), DKV_STATUS_IO);
    CHECK(clash == NULL);
    dkv_node_config_free(config);

    char addr[64];
    snprintf(addr, sizeof addr, "localhost:%u", port);
    const char *addrs[] = {addr};
    dkv_client *client = NULL;
    OK(dkv_client_connect(addrs, 1, 2000, &client));
    test_data_path(client);
    test_batches(client);
    test_shared_client(client);
    test_status(node, client);
    test_cache_tier(client);

    /* Stop: idempotent; the port is still known; requests fail cleanly. */
    EXPECT(dkv_node_stop(NULL), DKV_STATUS_INVALID_ARGUMENT);
    OK(dkv_node_stop(node));
    OK(dkv_node_stop(node));
    OK(dkv_node_port(node, &port));
    dkv_cluster_status status;
    EXPECT(dkv_node_status(node, 0, &status), DKV_STATUS_UNAVAILABLE);
    dkv_buf value;
    EXPECT(dkv_get(client, (const uint8_t *)"a", 1, DKV_CONSISTENCY_ONE, 0, &value),
           DKV_STATUS_UNAVAILABLE);
    CHECK(value.data == NULL);
    dkv_client_free(client);
    dkv_node_free(node);
    dkv_node_free(NULL);
    printf("test_api: %d checks passed\n", checks_passed);
    return 0;
}
