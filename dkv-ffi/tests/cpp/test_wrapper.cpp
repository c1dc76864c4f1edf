// test_wrapper.cpp: the C++ wrapper (bindings/cpp/dkv.hpp) over the same
// scenarios as the C tests: one node with every operation and error path
// (moved-from handles, empty keys, bad consistency, unreachable cluster,
// bad config), then a 3-node cluster built with add_node surviving one
// node's stop.
//
// Usage: test_wrapper <scratch dir>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <type_traits>

#include "dkv.hpp"

using namespace std::chrono_literals;

static int checks = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::cerr << __FILE__ << ":" << __LINE__ << ": CHECK(" #cond ") failed\n"; \
            std::exit(1);                                                             \
        }                                                                             \
        checks++;                                                                     \
    } while (0)

// `expr` throws dkv::Error with `expected` status.
#define THROWS(expr, expected)                                                          \
    do {                                                                                \
        try {                                                                           \
            (void)(expr);                                                               \
        } catch (const dkv::Error &e) {                                                 \
            if (e.status() != (expected)) {                                             \
                std::cerr << __FILE__ << ":" << __LINE__ << ": " #expr " threw status " \
                          << static_cast<unsigned>(e.status()) << ": " << e.what()      \
                          << "\n";                                                      \
                std::exit(1);                                                           \
            }                                                                           \
            checks++;                                                                   \
            break;                                                                      \
        }                                                                               \
        std::cerr << __FILE__ << ":" << __LINE__ << ": " #expr " did not throw\n";     \
        std::exit(1);                                                                   \
    } while (0)

static_assert(!std::is_copy_constructible_v<dkv::Client>, "Client is move-only");
static_assert(std::is_nothrow_move_constructible_v<dkv::Client>, "Client moves");
static_assert(!std::is_copy_assignable_v<dkv::Node>, "Node is move-only");
static_assert(std::is_nothrow_move_assignable_v<dkv::Node>, "Node moves");
static_assert(std::is_base_of_v<std::runtime_error, dkv::Error>, "Error is a runtime_error");

// A free port below the kernel's ephemeral range (so no outgoing connection
// takes it before a node binds it), from a per-process sequence.
static uint16_t free_port() {
    static unsigned next = 0;
    const unsigned base = static_cast<unsigned>(getpid()) * 7919u;
    for (int tries = 0; tries < 12000; tries++) {
        const auto port = static_cast<uint16_t>(20000u + (base + ++next * 13u) % 12000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(port);
        const bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0;
        if (fd >= 0) {
            close(fd);
        }
        if (ok) {
            return port;
        }
    }
    std::perror("free_port");
    std::exit(1);
}

static unsigned slow() {
    const char *s = std::getenv("DKV_TEST_SLOW");
    return s && *s && std::strcmp(s, "0") != 0 ? 10 : 1;
}

static void single_node(const std::string &dir) {
    CHECK(!dkv::version().empty());
    dkv::NodeConfig config;
    config.node_id(1).port(0).data_dir(dir + "/single").fsync(dkv::Fsync::Never);
    THROWS(config.fsync(dkv::Fsync::Periodic), dkv::Status::InvalidArgument);
    THROWS(config.node_id(0), dkv::Status::InvalidArgument);
    dkv::Node node(config);
    CHECK(node.port() != 0);

    dkv::Client client({node.address()}, 2000ms);
    client.put("k", "v");
    CHECK(client.get("k") == std::optional<std::string>("v"));
    CHECK(client.get("missing", dkv::Consistency::One) == std::nullopt);
    const std::string binary("a\0b\r\n", 5);
    std::vector<uint8_t> bytes = {0, 1, 2, 255};
    client.put(binary, bytes, dkv::Consistency::All, 1000ms);
    CHECK(client.get(binary, dkv::replicas(1)) == std::string("\0\1\2\xff", 4));
    client.put(dkv::Bytes("raw", 3), dkv::Bytes(nullptr, 0));
    CHECK(client.get("raw") == std::optional<std::string>(""));
    CHECK(client.remove("k"));
    CHECK(!client.remove("k"));
    CHECK(!client.get("k").has_value());

    client.put_many({{"a", "1"}, {"b", "2"}});
    auto values = client.get_many({"a", "zz", "b"});
    CHECK(values.size() == 3 && values[0] == std::optional<std::string>("1"));
    CHECK(!values[1].has_value() && values[2] == std::optional<std::string>("2"));
    CHECK(client.get_many({}).empty());

    // Time to live, counters, scans, flush.
    client.put_with_ttl("session", "data", 100s);
    auto left = client.ttl("session");
    CHECK(left.has_value() && *left > 99s && *left <= 100s);
    CHECK(client.expire("session", 200s));
    CHECK(client.ttl("session").value() > 199s);
    CHECK(client.persist("session"));
    CHECK(client.ttl("session") == std::optional<std::chrono::milliseconds>(-1ms));
    CHECK(!client.persist("session"));
    CHECK(!client.expire("nope", 1s));
    CHECK(!client.ttl("nope").has_value());
    CHECK(client.incr_by("hits") == 1);
    CHECK(client.incr_by("hits", 41) == 42);
    THROWS(client.incr_by("session"), dkv::Status::InvalidArgument);
    for (int i = 0; i < 12; i++) client.put("user:" + std::to_string(i), "u");
    CHECK(client.keys("user:*").size() == 12);
    auto page = client.scan(0, "user:*", 5);
    CHECK(page.first != 0 && !page.second.empty());
    client.flush();
    CHECK(client.keys().empty());
    CHECK(!client.get("hits").has_value());
    client.put_many({{"a", "1"}, {"b", "2"}});

    // Error paths.
    THROWS(client.get(""), dkv::Status::InvalidArgument);
    THROWS(client.put("k", "v", dkv::replicas(0)), dkv::Status::InvalidArgument);
    THROWS(client.put("k", "v", dkv::replicas(2)), dkv::Status::InvalidArgument);
    THROWS(client.get_many({"a", ""}), dkv::Status::InvalidArgument);
    try {
        client.get("", dkv::Consistency::One);
    } catch (const std::runtime_error &e) {
        CHECK(std::string(e.what()).find("key must not be empty") != std::string::npos);
    }
    dkv::ClusterStatus status = client.status();
    CHECK(status.node_id == 1 && status.peers.empty() && status.replication_factor == 1);
    CHECK(node.status().node_id == 1);

    // A moved-from handle is a NULL handle: calls report it, no crash.
    dkv::Client moved = std::move(client);
    THROWS(client.get("a"), dkv::Status::InvalidArgument);
    CHECK(moved.get("a") == std::optional<std::string>("1"));
    dkv::Node other = std::move(node);
    THROWS(node.port(), dkv::Status::InvalidArgument);

    // Shared between threads.
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; t++) {
        threads.emplace_back([&moved, t] {
            for (int i = 0; i < 20; i++) {
                std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
                moved.put(key, key);
                if (moved.get(key) != key) std::exit(1);
            }
        });
    }
    for (auto &t : threads) t.join();

    other.stop();
    other.stop();
    THROWS(moved.get("a"), dkv::Status::Unavailable);
    THROWS(other.status(), dkv::Status::Unavailable);

    // Unreachable cluster; bad address.
    THROWS(dkv::Client({"127.0.0.1:" + std::to_string(free_port())}, 300ms),
           dkv::Status::Unavailable);
    THROWS(dkv::Client({"nonsense"}), dkv::Status::InvalidArgument);
    THROWS(dkv::Client(std::vector<std::string>{}), dkv::Status::InvalidArgument);

    // A config the node refuses.
    dkv::NodeConfig bad;
    bad.data_dir(dir + "/bad").add_node(2, "127.0.0.1:1", "127.0.0.1:2");
    THROWS(dkv::Node(bad), dkv::Status::Config);

    // Durable writes through a group commit window; a window of more than
    // a second is refused.
    dkv::NodeConfig windowed;
    windowed.port(0).data_dir(dir + "/windowed").fsync(dkv::Fsync::Always);
    THROWS(windowed.fsync_window(std::chrono::seconds(2)), dkv::Status::InvalidArgument);
    windowed.fsync_window(std::chrono::microseconds(2000));
    dkv::Node durable(windowed);
    dkv::Client writer({durable.address()}, 2000ms);
    for (int i = 0; i < 20; i++) writer.put("w" + std::to_string(i), std::to_string(i));
    CHECK(writer.get("w19") == std::optional<std::string>("19"));
}

static void cluster(const std::string &dir) {
    std::vector<std::string> clients, peers;
    for (int i = 0; i < 3; i++) {
        clients.push_back("127.0.0.1:" + std::to_string(free_port()));
        peers.push_back("127.0.0.1:" + std::to_string(free_port()));
    }
    std::vector<dkv::Node> nodes;
    for (uint32_t id = 1; id <= 3; id++) {
        dkv::NodeConfig config;
        config.node_id(id).data_dir(dir + "/node-" + std::to_string(id));
        for (uint32_t m = 1; m <= 3; m++) config.add_node(m, clients[m - 1], peers[m - 1]);
        config.replication(3, 2, 2).fsync(dkv::Fsync::Never).cluster_secret("cpp-test-secret");
        config.timeouts(1000ms * slow(), 50ms * slow(), 500ms * slow());
        nodes.emplace_back(config);
    }
    auto wait_for = [&](std::size_t i, auto pred) {
        auto deadline = std::chrono::steady_clock::now() + 20s * slow();
        while (!pred(nodes[i].status())) {
            CHECK(std::chrono::steady_clock::now() < deadline);
            std::this_thread::sleep_for(20ms);
        }
    };
    for (std::size_t i = 0; i < 3; i++) {
        wait_for(i, [](const dkv::ClusterStatus &s) {
            return s.peers.size() == 2 && s.peers[0].up && s.peers[0].connected && s.peers[1].up &&
                   s.peers[1].connected;
        });
    }
    dkv::Client client(clients, 5000ms * slow());
    for (int i = 0; i < 10; i++) {
        client.put("key-" + std::to_string(i), "value-" + std::to_string(i));
    }
    CHECK(client.get("key-1", dkv::Consistency::All) == std::optional<std::string>("value-1"));

    nodes[0].stop();
    for (int i = 0; i < 10; i++) {
        CHECK(client.get("key-" + std::to_string(i)) == "value-" + std::to_string(i));
    }
    THROWS(client.get("key-1", dkv::Consistency::All), dkv::Status::Unavailable);
    wait_for(1, [](const dkv::ClusterStatus &s) { return s.peers.size() == 2 && !s.peers[0].up; });
    client.put("after", "stop");
    client.put_many({{"x", "1"}, {"y", "2"}}, dkv::replicas(2));
    CHECK(client.get("after") == std::optional<std::string>("stop"));
    wait_for(1, [](const dkv::ClusterStatus &s) {
        return s.peers.size() == 2 && s.peers[0].node_id == 1 && s.peers[0].hints_pending > 0 &&
               s.hints_pending >= s.peers[0].hints_pending;
    });
    dkv::ClusterStatus status = client.status();
    CHECK(status.node_id == 2 && status.write_quorum == 2 && !status.peers[0].connected);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " <scratch dir>\n";
        return 2;
    }
    std::string dir = argv[1];
    single_node(dir);
    cluster(dir);
    std::cout << "test_wrapper: " << checks << " checks passed\n";
    return 0;
}
