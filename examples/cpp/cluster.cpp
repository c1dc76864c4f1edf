// cluster.cpp: a 3-node dkv cluster inside this process, through the
// header-only C++ wrapper.
//
// Starts three nodes (N=3, W=2, R=2), writes a key at QUORUM, stops one
// node, and reads the key back at QUORUM from the two that are left.
//
//   cargo build -p dkv-ffi
//   g++ -std=c++17 -Iinclude -Ibindings/cpp examples/cpp/cluster.cpp
//       -Ltarget/debug -ldkv -Wl,-rpath,$PWD/target/debug -o cluster-cpp
//   (one command: the line is split here only for width)
//   ./cluster-cpp [data dir]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <thread>

#include "dkv.hpp"

using namespace std::chrono_literals;

// A 127.0.0.1 port that was free a moment ago.
static std::string free_address() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len) != 0) {
        throw std::runtime_error("no free port");
    }
    close(fd);
    return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

int main(int argc, char **argv) try {
    std::string dir;
    if (argc > 1) {
        dir = argv[1];
    } else {
        char tmpl[] = "/tmp/dkv-example-XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
    }
    std::cout << "libdkv " << dkv::version() << ", data under " << dir << "\n";

    std::vector<std::string> clients, peers;
    for (int i = 0; i < 3; i++) {
        clients.push_back(free_address());
        peers.push_back(free_address());
    }
    std::vector<dkv::Node> nodes;
    for (uint32_t id = 1; id <= 3; id++) {
        dkv::NodeConfig config;
        config.node_id(id).data_dir(dir + "/node-" + std::to_string(id)).replication(3, 2, 2);
        for (uint32_t m = 1; m <= 3; m++) config.add_node(m, clients[m - 1], peers[m - 1]);
        config.timeouts(1000ms, 100ms, 1000ms);
        nodes.emplace_back(config);
        std::cout << "node " << id << " listening on " << clients[id - 1] << "\n";
    }
    for (dkv::Node &node : nodes) {
        for (int attempt = 0;; attempt++) {
            dkv::ClusterStatus status = node.status();
            if (status.peers.size() == 2 && status.peers[0].up && status.peers[0].connected &&
                status.peers[1].up && status.peers[1].connected)
                break;
            if (attempt == 500) throw std::runtime_error("the nodes did not connect in 10 s");
            std::this_thread::sleep_for(20ms);
        }
    }

    dkv::Client client(clients, 2000ms);
    client.put("greeting", "hello from C++", dkv::Consistency::Quorum);
    std::cout << "put greeting = \"hello from C++\" at QUORUM\n";

    nodes[0].stop();
    std::cout << "stopped node 1\n";

    std::optional<std::string> value = client.get("greeting", dkv::Consistency::Quorum);
    std::cout << "get greeting at QUORUM with node 1 down = \"" << value.value_or("<missing>")
              << "\"\n";
    try {
        client.get("greeting", dkv::Consistency::All);
    } catch (const dkv::Error &e) {
        std::cout << "get greeting at ALL with node 1 down: "
                  << dkv_status_name(static_cast<uint32_t>(e.status())) << "\n";
    }
    return 0;
} catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
}
