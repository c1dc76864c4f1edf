/* hello.c: the smallest libdkv program: a node in this process, a client,
 * one write and one read. See docs/c-api.md for the command that builds
 * and runs it. */
#include <dkv.h>
#include <stdio.h>

int main(void) {
    dkv_node_config *config; dkv_node *node; dkv_client *client; dkv_buf value; uint16_t port; char addr[32];
    const char *addrs[] = {addr};
    if (dkv_node_config_new(&config) || dkv_node_config_set_data_dir(config, "dkv-hello") ||
        dkv_node_start(config, &node) || dkv_node_port(node, &port) ||
        snprintf(addr, sizeof addr, "127.0.0.1:%u", port) < 0 || dkv_client_connect(addrs, 1, 0, &client) ||
        dkv_put(client, (const uint8_t *)"hello", 5, (const uint8_t *)"world", 5, DKV_CONSISTENCY_QUORUM, 0) ||
        dkv_get(client, (const uint8_t *)"hello", 5, DKV_CONSISTENCY_QUORUM, 0, &value))
        return fprintf(stderr, "dkv: %s\n", dkv_last_error()), 1;
    printf("hello = %.*s\n", (int)value.len, (const char *)value.data);
    dkv_buf_free(&value), dkv_client_free(client), dkv_node_free(node), dkv_node_config_free(config);
    return 0;
}
