// dkv.hpp: header-only C++17 wrapper over the libdkv C API (dkv.h).
//
//   dkv::NodeConfig config;
//   config.node_id(1).data_dir("/tmp/dkv-1");
//   dkv::Node node(config);
//   dkv::Client client({"127.0.0.1:" + std::to_string(node.port())});
//   client.put("key", "value");
//   std::optional<std::string> value = client.get("key");
//
// Ownership: Node, NodeConfig and Client own their C handle (RAII,
// move-only); destructors free it and never throw. Errors are thrown as
// dkv::Error, which carries the dkv_status code and dkv_last_error()'s
// message. Thread safety is the C API's: a Node or Client may be used
// from several threads at once (a Client serializes their requests on
// one connection); a NodeConfig may not.
//
// Link with -ldkv (and compile with -std=c++17 or later).
#ifndef DKV_HPP
#define DKV_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dkv.h"

namespace dkv {

/// The status codes of dkv.h.
enum class Status : uint32_t {
    Ok = DKV_STATUS_OK,
    NotFound = DKV_STATUS_NOT_FOUND,
    InvalidArgument = DKV_STATUS_INVALID_ARGUMENT,
    Unavailable = DKV_STATUS_UNAVAILABLE,
    Timeout = DKV_STATUS_TIMEOUT,
    Io = DKV_STATUS_IO,
    Corruption = DKV_STATUS_CORRUPTION,
    Panic = DKV_STATUS_PANIC,
    Config = DKV_STATUS_CONFIG,
    Protocol = DKV_STATUS_PROTOCOL,
    Server = DKV_STATUS_SERVER,
};

/// A failed libdkv call: the status code and the library's message.
class Error : public std::runtime_error {
  public:
    Error(Status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    /// The dkv_status of the failure.
    Status status() const noexcept { return status_; }

  private:
    Status status_;
};

/// How many replicas a request waits for. Besides the named levels, any
/// positive count is valid: see replicas().
enum class Consistency : int32_t {
    One = DKV_CONSISTENCY_ONE,
    Quorum = DKV_CONSISTENCY_QUORUM,
    All = DKV_CONSISTENCY_ALL,
};

/// Exactly `n` replicas (1..N).
inline Consistency replicas(int32_t n) { return static_cast<Consistency>(n); }

/// When a node's writes reach the disk.
enum class Fsync : uint32_t {
    Always = DKV_FSYNC_ALWAYS,
    Periodic = DKV_FSYNC_PERIODIC,
    Never = DKV_FSYNC_NEVER,
};

/// Bytes lent to a call: from a string, a string_view, a byte vector, or
/// a pointer and a length. Keys and values are bytes, not text.
class Bytes {
  public:
    Bytes(std::string_view s) noexcept
        : data_(reinterpret_cast<const uint8_t *>(s.data())), size_(s.size()) {}
    Bytes(const std::string &s) noexcept : Bytes(std::string_view(s)) {}
    Bytes(const char *s) : Bytes(std::string_view(s)) {}
    Bytes(const std::vector<uint8_t> &v) noexcept : data_(v.data()), size_(v.size()) {}
    Bytes(const void *data, std::size_t size) noexcept
        : data_(static_cast<const uint8_t *>(data)), size_(size) {}
    const uint8_t *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    dkv_slice slice() const noexcept { return dkv_slice{data_, size_}; }

  private:
    const uint8_t *data_;
    std::size_t size_;
};

/// One peer as a node sees it.
struct PeerStatus {
    uint32_t node_id;
    bool up;
    bool connected;
    uint64_t hints_pending;
};

/// A node's view of its cluster.
struct ClusterStatus {
    uint32_t node_id = 0;
    uint32_t replication_factor = 0;
    uint32_t write_quorum = 0;
    uint32_t read_quorum = 0;
    std::vector<PeerStatus> peers;
    uint64_t hints_pending = 0;
};

namespace detail {

/// Throws dkv::Error unless `status` is one of the accepted ones.
inline dkv_status check(dkv_status status, bool not_found_ok = false) {
    if (status == DKV_STATUS_OK || (not_found_ok && status == DKV_STATUS_NOT_FOUND)) {
        return status;
    }
    throw Error(static_cast<Status>(status), dkv_last_error());
}

inline uint32_t millis(std::chrono::milliseconds ms) {
    if (ms.count() <= 0) return 0;
    if (ms.count() > 0xffffffffLL) return 0xffffffffu;
    return static_cast<uint32_t>(ms.count());
}

/// Owns a dkv_buf until it is copied out.
struct Buf {
    dkv_buf raw{nullptr, 0};
    Buf() = default;
    Buf(const Buf &) = delete;
    Buf &operator=(const Buf &) = delete;
    ~Buf() { dkv_buf_free(&raw); }
    std::string str() const {
        return raw.len ? std::string(reinterpret_cast<const char *>(raw.data), raw.len)
                       : std::string();
    }
};

inline ClusterStatus to_status(dkv_cluster_status *raw) {
    ClusterStatus status;
    status.node_id = raw->node_id;
    status.replication_factor = raw->replication_factor;
    status.write_quorum = raw->write_quorum;
    status.read_quorum = raw->read_quorum;
    status.hints_pending = raw->hints_pending;
    for (std::size_t i = 0; i < raw->peer_count; i++) {
        const dkv_peer_status &p = raw->peers[i];
        status.peers.push_back(PeerStatus{p.node_id, p.up, p.connected, p.hints_pending});
    }
    dkv_cluster_status_free(raw);
    return status;
}

}  // namespace detail

/// The library's version string, e.g. "0.1.0".
inline std::string version() { return dkv_version(); }

/// A node's settings (see the dkv_node_config_* functions). Not
/// thread-safe. Setters return *this for chaining and throw dkv::Error.
class NodeConfig {
  public:
    NodeConfig() { detail::check(dkv_node_config_new(&raw_)); }
    NodeConfig(const NodeConfig &) = delete;
    NodeConfig &operator=(const NodeConfig &) = delete;
    NodeConfig(NodeConfig &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    NodeConfig &operator=(NodeConfig &&other) noexcept {
        std::swap(raw_, other.raw_);
        return *this;
    }
    ~NodeConfig() { dkv_node_config_free(raw_); }

    NodeConfig &node_id(uint32_t id) { return set(dkv_node_config_set_node_id(raw_, id)); }
    NodeConfig &port(uint16_t port) { return set(dkv_node_config_set_port(raw_, port)); }
    NodeConfig &data_dir(const std::string &path) {
        return set(dkv_node_config_set_data_dir(raw_, path.c_str()));
    }
    NodeConfig &cluster_conf(const std::string &path) {
        return set(dkv_node_config_set_cluster_conf(raw_, path.c_str()));
    }
    /// The secret every node of the cluster shares (never sent); without
    /// it, nodes started by this process share one made up for it.
    NodeConfig &cluster_secret(const std::string &secret) {
        return set(dkv_node_config_set_cluster_secret(raw_, secret.c_str()));
    }
    /// Adds a member; an empty `peer_addr` means client port + 10000.
    NodeConfig &add_node(uint32_t id, const std::string &client_addr,
                         const std::string &peer_addr = std::string()) {
        return set(dkv_node_config_add_node(raw_, id, client_addr.c_str(),
                                            peer_addr.empty() ? nullptr : peer_addr.c_str()));
    }
    NodeConfig &replication(uint32_t n, uint32_t w, uint32_t r) {
        return set(dkv_node_config_set_replication(raw_, n, w, r));
    }
    NodeConfig &fsync(Fsync mode, std::chrono::milliseconds interval = std::chrono::milliseconds(0)) {
        return set(dkv_node_config_set_fsync(raw_, static_cast<uint32_t>(mode),
                                             detail::millis(interval)));
    }
    /// The group commit window of Fsync::Always (0: sync back to back; at
    /// most one second), as dkv_node_config_set_fsync_window.
    NodeConfig &fsync_window(std::chrono::microseconds window) {
        auto us = window.count();
        return set(dkv_node_config_set_fsync_window(
            raw_, us <= 0 ? 0u : us > 0xffffffffLL ? 0xffffffffu : static_cast<uint32_t>(us)));
    }
    NodeConfig &timeouts(std::chrono::milliseconds request, std::chrono::milliseconds heartbeat,
                         std::chrono::milliseconds failure) {
        return set(dkv_node_config_set_timeouts(raw_, detail::millis(request),
                                                detail::millis(heartbeat),
                                                detail::millis(failure)));
    }
    const dkv_node_config *raw() const noexcept { return raw_; }

  private:
    NodeConfig &set(dkv_status status) {
        detail::check(status);
        return *this;
    }
    dkv_node_config *raw_ = nullptr;
};

/// A node running in this process; the destructor stops and frees it.
class Node {
  public:
    explicit Node(const NodeConfig &config) { detail::check(dkv_node_start(config.raw(), &raw_)); }
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;
    Node(Node &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Node &operator=(Node &&other) noexcept {
        std::swap(raw_, other.raw_);
        return *this;
    }
    ~Node() { dkv_node_free(raw_); }

    /// The client port (useful after port 0).
    uint16_t port() const {
        uint16_t port = 0;
        detail::check(dkv_node_port(raw_, &port));
        return port;
    }
    /// "127.0.0.1:<port>".
    std::string address() const { return "127.0.0.1:" + std::to_string(port()); }
    /// The node's view of its cluster.
    ClusterStatus status(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) const {
        dkv_cluster_status raw;
        detail::check(dkv_node_status(raw_, detail::millis(timeout), &raw));
        return detail::to_status(&raw);
    }
    /// Stops the node (idempotent); the object stays valid.
    void stop() { detail::check(dkv_node_stop(raw_)); }

  private:
    dkv_node *raw_ = nullptr;
};

/// A client connected to a cluster; the destructor closes it.
class Client {
  public:
    using ms = std::chrono::milliseconds;

    /// Connects to the first reachable node of `addrs` ("host:port").
    /// `timeout` bounds each connection attempt and is the default for
    /// requests given none (0: 5 s).
    explicit Client(const std::vector<std::string> &addrs, ms timeout = ms(0)) {
        std::vector<const char *> ptrs;
        for (const std::string &a : addrs) ptrs.push_back(a.c_str());
        detail::check(dkv_client_connect(ptrs.data(), ptrs.size(), detail::millis(timeout), &raw_));
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&other) noexcept : raw_(std::exchange(other.raw_, nullptr)) {}
    Client &operator=(Client &&other) noexcept {
        std::swap(raw_, other.raw_);
        return *this;
    }
    ~Client() { dkv_client_free(raw_); }

    void put(Bytes key, Bytes value, Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        detail::check(dkv_put(raw_, key.data(), key.size(), value.data(), value.size(),
                              static_cast<int32_t>(c), detail::millis(timeout)));
    }
    /// The value, or std::nullopt when the key is missing or deleted.
    std::optional<std::string> get(Bytes key, Consistency c = Consistency::Quorum,
                                   ms timeout = ms(0)) {
        detail::Buf buf;
        dkv_status s = detail::check(dkv_get(raw_, key.data(), key.size(), static_cast<int32_t>(c),
                                             detail::millis(timeout), &buf.raw),
                                     true);
        if (s == DKV_STATUS_NOT_FOUND) return std::nullopt;
        return buf.str();
    }
    /// Deletes the key; true when a replica held a live value.
    bool remove(Bytes key, Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        bool existed = false;
        detail::check(dkv_delete(raw_, key.data(), key.size(), static_cast<int32_t>(c),
                                 detail::millis(timeout), &existed));
        return existed;
    }
    /// Reads several keys in one request; answers in the keys' order.
    std::vector<std::optional<std::string>> get_many(const std::vector<Bytes> &keys,
                                                     Consistency c = Consistency::Quorum,
                                                     ms timeout = ms(0)) {
        std::vector<dkv_slice> slices;
        for (const Bytes &k : keys) slices.push_back(k.slice());
        std::vector<detail::Buf> bufs(keys.size());
        std::vector<dkv_buf> raw(keys.size());
        std::unique_ptr<bool[]> found(new bool[keys.size() + 1]);
        dkv_status s = dkv_get_many(raw_, slices.data(), slices.size(), static_cast<int32_t>(c),
                                    detail::millis(timeout), raw.data(), found.get());
        for (std::size_t i = 0; i < keys.size(); i++) bufs[i].raw = raw[i];
        detail::check(s);
        std::vector<std::optional<std::string>> values;
        for (std::size_t i = 0; i < keys.size(); i++) {
            values.push_back(found[i] ? std::optional<std::string>(bufs[i].str()) : std::nullopt);
        }
        return values;
    }
    /// Writes several pairs in one request.
    void put_many(const std::vector<std::pair<Bytes, Bytes>> &pairs,
                  Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        std::vector<dkv_slice> keys, values;
        for (const auto &p : pairs) {
            keys.push_back(p.first.slice());
            values.push_back(p.second.slice());
        }
        detail::check(dkv_put_many(raw_, keys.data(), values.data(), pairs.size(),
                                   static_cast<int32_t>(c), detail::millis(timeout)));
    }
    /// Writes the value, to expire after `ttl` (at least 1 ms).
    void put_with_ttl(Bytes key, Bytes value, ms ttl, Consistency c = Consistency::Quorum,
                      ms timeout = ms(0)) {
        detail::check(dkv_put_ttl(raw_, key.data(), key.size(), value.data(), value.size(),
                                  static_cast<uint64_t>(ttl.count()), static_cast<int32_t>(c),
                                  detail::millis(timeout)));
    }
    /// Makes the key expire after `ttl`; false when it does not exist.
    bool expire(Bytes key, ms ttl, Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        dkv_status s = detail::check(dkv_expire(raw_, key.data(), key.size(),
                                                static_cast<uint64_t>(ttl.count()),
                                                static_cast<int32_t>(c), detail::millis(timeout)),
                                     true);
        return s != DKV_STATUS_NOT_FOUND;
    }
    /// Removes the key's expiry; true when it had one.
    bool persist(Bytes key, Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        bool changed = false;
        detail::check(dkv_persist(raw_, key.data(), key.size(), static_cast<int32_t>(c),
                                  detail::millis(timeout), &changed),
                      true);
        return changed;
    }
    /// The key's time to live: std::nullopt when it does not exist, ms(-1)
    /// when it does not expire, else what is left.
    std::optional<ms> ttl(Bytes key, Consistency c = Consistency::Quorum, ms timeout = ms(0)) {
        int64_t left = -2;
        dkv_status s = detail::check(dkv_ttl(raw_, key.data(), key.size(), static_cast<int32_t>(c),
                                             detail::millis(timeout), &left),
                                     true);
        if (s == DKV_STATUS_NOT_FOUND) return std::nullopt;
        return ms(left);
    }
    /// Adds `delta` to the integer at the key (missing: 0); the new value.
    int64_t incr_by(Bytes key, int64_t delta = 1, Consistency c = Consistency::Quorum,
                    ms timeout = ms(0)) {
        int64_t value = 0;
        detail::check(dkv_incr_by(raw_, key.data(), key.size(), delta, static_cast<int32_t>(c),
                                  detail::millis(timeout), &value));
        return value;
    }
    /// One page of a scan from `cursor` (0 to start): the next cursor (0:
    /// done) and the keys matching `pattern` (a Redis glob; "" for all).
    std::pair<uint64_t, std::vector<std::string>> scan(uint64_t cursor,
                                                       const std::string &pattern = "",
                                                       uint32_t count = 100,
                                                       ms timeout = ms(0)) {
        uint64_t next = 0;
        dkv_key_list list{nullptr, 0};
        dkv_status s =
            dkv_scan(raw_, cursor, reinterpret_cast<const uint8_t *>(pattern.data()),
                     pattern.size(), count, detail::millis(timeout), &next, &list);
        std::vector<std::string> keys;
        for (std::size_t i = 0; i < list.len; i++) {
            keys.emplace_back(reinterpret_cast<const char *>(list.keys[i].data), list.keys[i].len);
        }
        dkv_key_list_free(&list);
        detail::check(s);
        return {next, keys};
    }
    /// Every key matching `pattern`, each once.
    std::vector<std::string> keys(const std::string &pattern = "", ms timeout = ms(0)) {
        std::set<std::string> all;
        uint64_t cursor = 0;
        do {
            auto page = scan(cursor, pattern, 1000, timeout);
            all.insert(page.second.begin(), page.second.end());
            cursor = page.first;
        } while (cursor != 0);
        return std::vector<std::string>(all.begin(), all.end());
    }
    /// Deletes every key of the cluster.
    void flush(ms timeout = ms(0)) { detail::check(dkv_flush(raw_, detail::millis(timeout))); }
    /// The connected node's view of the cluster.
    ClusterStatus status(ms timeout = ms(0)) {
        dkv_cluster_status raw;
        detail::check(dkv_client_status(raw_, detail::millis(timeout), &raw));
        return detail::to_status(&raw);
    }

  private:
    dkv_client *raw_ = nullptr;
};

}  // namespace dkv

#endif  // DKV_HPP
