// run_kernels: an emulated CUDA device, serving the driver operations of
// src/backends/cuda/emulator.rs over stdin/stdout.
//
//   run_kernels serve
//
// Device memory is one exact-size heap block per allocation, filled with
// garbage; copies, memsets and kernel pointer arguments must stay inside a
// live allocation. A launch checks its arguments against the kernel's C++
// signature (count, size of each, pointers inside an allocation) and its
// shape against the hardware limits and the kernel's block size, then runs
// the unchanged kernel under cuda_host.hpp. Build (tests/backends.rs does):
//
//   c++ -std=c++20 -O1 -g -pthread -fsanitize=address,undefined
//       -fno-sanitize-recover=undefined kernels/emu/run_kernels.cpp -o run_kernels
//
// Protocol: see src/backends/cuda/emulator.rs.
#include "cuda_host.hpp"

#include "../minhash_signatures.cu"
#include "../band_hashes.cu"
#include "../ngram_membership.cu"

#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace {

std::map<std::uintptr_t, std::size_t> allocations;

bool read_exact(void* p, std::size_t n) {
    return n == 0 || std::fread(p, 1, n, stdin) == n;
}

template <class T>
T read_value() {
    T v{};
    if (!read_exact(&v, sizeof v)) std::exit(0);  // the driver went away
    return v;
}

void reply(std::uint32_t status, const std::string& msg, const void* payload = nullptr,
           std::size_t n = 0) {
    const std::uint32_t len = static_cast<std::uint32_t>(msg.size());
    std::fwrite(&status, 4, 1, stdout);
    std::fwrite(&len, 4, 1, stdout);
    if (len) std::fwrite(msg.data(), 1, len, stdout);
    if (status == 0 && n) std::fwrite(payload, 1, n, stdout);
    std::fflush(stdout);
}

// The allocation holding [p, p + n), or none.
bool inside(std::uintptr_t p, std::size_t n) {
    auto it = allocations.upper_bound(p);
    if (it == allocations.begin()) return false;
    --it;
    return p >= it->first && p - it->first <= it->second && n <= it->second - (p - it->first);
}

std::string describe_range(std::uintptr_t p, std::size_t n) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "[0x%zx, +%zu bytes)", static_cast<std::size_t>(p), n);
    return buf;
}

struct RawArg {
    std::uint32_t size;
    unsigned char bytes[8];
};

template <class T>
T take_arg(const RawArg& a, std::size_t i, const char* kernel, std::string& err) {
    T v{};
    if (a.size != sizeof(T)) {
        err = std::string(kernel) + ": argument " + std::to_string(i) + " has " +
              std::to_string(a.size) + " bytes but parameter " + std::to_string(i) + " has " +
              std::to_string(sizeof(T));
        return v;
    }
    std::memcpy(&v, a.bytes, sizeof(T));
    if constexpr (std::is_pointer_v<T>) {
        if (!inside(reinterpret_cast<std::uintptr_t>(v), 1) && err.empty())
            err = std::string(kernel) + ": pointer argument " + std::to_string(i) +
                  " is in no device allocation";
    }
    return v;
}

template <class... P, std::size_t... I>
std::string call_kernel(void (*k)(P...), const char* name, bool barriers,
                        const std::vector<RawArg>& args, dim3 grid, dim3 block,
                        std::index_sequence<I...>) {
    std::string err;
    // Braced initialisation evaluates the arguments in order.
    std::tuple<P...> vals{take_arg<P>(args[I], I, name, err)...};
    if (!err.empty()) return err;
    emu_launch(grid, block, barriers, [&] { std::apply(k, vals); });
    return "";
}

template <class... P>
std::string launch(void (*k)(P...), const char* name, unsigned max_block, bool barriers,
                   const std::vector<RawArg>& args, dim3 grid, dim3 block) {
    if (args.size() != sizeof...(P))
        return std::string(name) + ": " + std::to_string(args.size()) +
               " arguments for a kernel of " + std::to_string(sizeof...(P)) + " parameters";
    const unsigned long long threads = 1ull * block.x * block.y * block.z;
    if (threads == 0 || threads > max_block)
        return std::string(name) + ": " + std::to_string(threads) +
               " threads per block, the kernel's __launch_bounds__ allow " +
               std::to_string(max_block);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 0x7fffffffu || grid.y > 65535 ||
        grid.z > 65535)
        return std::string(name) + ": grid (" + std::to_string(grid.x) + ", " +
               std::to_string(grid.y) + ", " + std::to_string(grid.z) +
               ") outside CUDA's limits";
    return call_kernel(k, name, barriers, args, grid, block, std::index_sequence_for<P...>{});
}

void serve() {
    // Garbage that differs between allocations, as device memory may hold.
    unsigned char fill = 0x5b;
    for (;;) {
        const auto op = read_value<std::uint8_t>();
        switch (op) {
        case 0:
            return;
        case 1: {  // alloc
            const auto n = read_value<std::uint64_t>();
            if (n == 0) {
                reply(1, "cuMemAlloc of 0 bytes (CUDA_ERROR_INVALID_VALUE)");
                break;
            }
            auto* p = static_cast<unsigned char*>(std::malloc(n));
            if (!p) {
                reply(1, "out of memory allocating " + std::to_string(n) + " bytes");
                break;
            }
            std::memset(p, fill, n);
            fill = static_cast<unsigned char>(fill * 5 + 1);
            allocations[reinterpret_cast<std::uintptr_t>(p)] = n;
            const std::uint64_t ptr = reinterpret_cast<std::uintptr_t>(p);
            reply(0, "", &ptr, 8);
            break;
        }
        case 2: {  // free
            const auto p = read_value<std::uint64_t>();
            auto it = allocations.find(p);
            if (it == allocations.end()) {
                reply(1, "cuMemFree of " + describe_range(p, 0) + ", not an allocation");
                break;
            }
            std::free(reinterpret_cast<void*>(it->first));
            allocations.erase(it);
            reply(0, "");
            break;
        }
        case 3: {  // upload
            const auto dst = read_value<std::uint64_t>();
            const auto n = read_value<std::uint64_t>();
            std::vector<unsigned char> data(n);
            if (!read_exact(data.data(), n)) return;
            if (!inside(dst, n)) {
                reply(1, "host-to-device copy to " + describe_range(dst, n) +
                             " outside every allocation");
                break;
            }
            if (n) std::memcpy(reinterpret_cast<void*>(dst), data.data(), n);
            reply(0, "");
            break;
        }
        case 4: {  // download
            const auto src = read_value<std::uint64_t>();
            const auto n = read_value<std::uint64_t>();
            if (!inside(src, n)) {
                reply(1, "device-to-host copy from " + describe_range(src, n) +
                             " outside every allocation");
                break;
            }
            reply(0, "", reinterpret_cast<const void*>(src), n);
            break;
        }
        case 5: {  // memset
            const auto dst = read_value<std::uint64_t>();
            const auto v = read_value<std::uint8_t>();
            const auto n = read_value<std::uint64_t>();
            if (!inside(dst, n)) {
                reply(1, "memset of " + describe_range(dst, n) + " outside every allocation");
                break;
            }
            if (n) std::memset(reinterpret_cast<void*>(dst), v, n);
            reply(0, "");
            break;
        }
        case 6: {  // launch
            const auto kernel = read_value<std::uint8_t>();
            std::uint32_t s[6];
            for (auto& v : s) v = read_value<std::uint32_t>();
            const auto nargs = read_value<std::uint32_t>();
            std::vector<RawArg> args(nargs);
            bool ok = true;
            for (auto& a : args) {
                a.size = read_value<std::uint32_t>();
                if (a.size > 8) {
                    ok = false;
                    break;
                }
                if (!read_exact(a.bytes, a.size)) return;
            }
            if (!ok) {
                reply(1, "a kernel argument larger than 8 bytes");
                break;
            }
            const dim3 grid{s[0], s[1], s[2]}, block{s[3], s[4], s[5]};
            std::string err;
            switch (kernel) {
            case 0:
                // The one kernel with __syncthreads: one OS thread per CUDA
                // thread. The others run their threads in turn (a
                // __syncthreads there would be reported).
                err = launch(minhash_signatures, "minhash_signatures", MINHASH_BLOCK, true, args,
                             grid, block);
                break;
            case 1:
                err = launch(band_hashes, "band_hashes", BANDS_BLOCK, false, args, grid, block);
                break;
            case 2:
                err = launch(ngram_membership, "ngram_membership", NGRAM_BLOCK, false, args, grid,
                             block);
                break;
            default:
                err = "unknown kernel " + std::to_string(kernel);
            }
            reply(err.empty() ? 0 : 1, err);
            break;
        }
        default:
            emu_fail("unknown request %u", op);
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2 || std::string(argv[1]) != "serve") {
        std::fprintf(stderr, "usage: run_kernels serve (driven by src/backends/cuda/emulator.rs)\n");
        return 2;
    }
    serve();
    for (auto& [p, n] : allocations) std::free(reinterpret_cast<void*>(p));
    return 0;
}
