// writer: the C++ side of the mixed-language test (tests/python/
// test_mixed_language.py). Writes `count` keys through libdkv's C++
// wrapper at QUORUM, then reads each back at QUORUM.
//
//   writer <addr>[,<addr>...] <key prefix> <first index> <count>
//
// Key i is "<prefix><i>", its value "cpp-value-<i>". Prints
// "wrote <count>" and exits 0, or prints the dkv::Error and exits 1.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "dkv.hpp"

static std::vector<std::string> split(const std::string &text, char sep) {
    std::vector<std::string> parts;
    std::string::size_type start = 0;
    while (start <= text.size()) {
        std::string::size_type end = text.find(sep, start);
        if (end == std::string::npos) end = text.size();
        if (end > start) parts.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return parts;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s <addr>[,<addr>...] <key prefix> <first index> <count>\n",
                     argv[0]);
        return 2;
    }
    const std::vector<std::string> addrs = split(argv[1], ',');
    const std::string prefix = argv[2];
    const long first = std::strtol(argv[3], nullptr, 10);
    const long count = std::strtol(argv[4], nullptr, 10);
    try {
        dkv::Client client(addrs, std::chrono::milliseconds(5000));
        for (long i = first; i < first + count; i++) {
            const std::string key = prefix + std::to_string(i);
            client.put(key, "cpp-value-" + std::to_string(i), dkv::Consistency::Quorum);
        }
        for (long i = first; i < first + count; i++) {
            const std::string key = prefix + std::to_string(i);
            std::optional<std::string> value = client.get(key, dkv::Consistency::Quorum);
            if (!value || *value != "cpp-value-" + std::to_string(i)) {
                std::fprintf(stderr, "read back %s: wrong value\n", key.c_str());
                return 1;
            }
        }
        std::printf("wrote %ld\n", count);
        return 0;
    } catch (const dkv::Error &e) {
        std::fprintf(stderr, "dkv error %u: %s\n", static_cast<unsigned>(e.status()), e.what());
        return 1;
    }
}
