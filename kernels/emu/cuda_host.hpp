// cuda_host.hpp: runs the CUDA kernels of kernels/*.cu on the CPU, unchanged,
// so that their indexing, shared-memory tiling, barriers and atomics are
// tested on machines without a GPU (src/backends/cuda/emulator.rs drives it,
// tests/backends.rs builds it with -fsanitize=address,undefined).
//
// How: every CUDA thread of a block is a std::thread; blocks run one after
// another, so a `__shared__` array can be a function-local `static` (one block
// uses it at a time). atomicMin is a compare-and-swap loop on
// std::atomic_ref.
//
// What it catches that a lenient emulation would not:
// * Shared memory holds garbage at the start of every block, as on a GPU:
//   `__shared__` arrays are placed in one linker section (`emu_shared`) that
//   is refilled with fresh pseudo-random bytes before each block, so a kernel
//   that reads a tile element it did not write gets a wrong answer.
// * `__syncthreads` and the end of a block are separate barriers: a thread
//   that returns while others wait at `__syncthreads` (a divergent barrier,
//   undefined on a GPU) is reported, as is a `__syncthreads` reached after a
//   thread of the block returned.
// * A watchdog: a barrier wait longer than EMU_WATCHDOG_SECS (default 120),
//   or a launch running longer, stops the process with a message instead of
//   hanging the test.
// * Out-of-bounds accesses: device buffers are exact-size heap blocks and the
//   build uses AddressSanitizer and UndefinedBehaviorSanitizer (bounds of the
//   `__shared__` arrays included).
//
// What it does not show: timing, coalescing, occupancy, warp-level
// behaviour (it runs threads independently), or the real driver.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <vector>

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static __attribute__((section("emu_shared")))

// The linker defines these around the `emu_shared` section.
extern "C" char __start_emu_shared[];
extern "C" char __stop_emu_shared[];

// Reports a kernel or emulation failure and stops the process: the Rust
// driver sees the pipe close and quotes this message.
[[noreturn]] inline void emu_fail(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "CUDA emulator: ");
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, "\n");
    va_end(ap);
    std::fflush(stderr);
    _exit(70);
}

inline int emu_watchdog_secs() {
    static const int secs = [] {
        const char* v = std::getenv("EMU_WATCHDOG_SECS");
        int s = v ? std::atoi(v) : 0;
        return s > 0 ? s : 120;
    }();
    return secs;
}

// Fills the shared-memory section with pseudo-random bytes (xorshift64).
// Not instrumented: ASan's redzones around the section's arrays are
// poisoned in its shadow memory, and writing over them here is deliberate.
__attribute__((no_sanitize_address)) inline void emu_poison_shared() {
    static std::uint64_t state = 0x9E3779B97F4A7C15ull;
    for (volatile char* p = __start_emu_shared; p < __stop_emu_shared; ++p) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *p = static_cast<char>(state);
    }
}

// The two barriers of one block: `__syncthreads` and the end of the block.
// In sequential mode (kernels declared barrier-free, run one thread after
// another) a `__syncthreads` is an error: the declaration was wrong.
class BlockSync {
public:
    void reset(unsigned threads, bool sequential) {
        n_ = threads;
        arrived_ = finished_ = 0;
        sequential_ = sequential;
    }

    void sync() {
        if (sequential_)
            emu_fail("a kernel run without barriers called __syncthreads "
                     "(declare it as using barriers in run_kernels.cpp)");
        std::unique_lock<std::mutex> l(m_);
        if (finished_ > 0)
            emu_fail("block (%u,%u,%u): __syncthreads reached after %u thread(s) of the block "
                     "returned (divergent barrier)",
                     blockIdx.x, blockIdx.y, blockIdx.z, finished_);
        const unsigned long g = gen_;
        if (++arrived_ == n_) {
            arrived_ = 0;
            ++gen_;
            cv_.notify_all();
            return;
        }
        if (!cv_.wait_for(l, std::chrono::seconds(emu_watchdog_secs()), [&] { return gen_ != g; }))
            emu_fail("block (%u,%u,%u): deadlock, %u of %u threads waited %d s at __syncthreads",
                     blockIdx.x, blockIdx.y, blockIdx.z, arrived_, n_, emu_watchdog_secs());
    }

    void finish() {
        std::unique_lock<std::mutex> l(m_);
        if (arrived_ > 0)
            emu_fail("block (%u,%u,%u): a thread returned while %u thread(s) wait at "
                     "__syncthreads (divergent barrier)",
                     blockIdx.x, blockIdx.y, blockIdx.z, arrived_);
        const unsigned long g = block_gen_;
        if (++finished_ == n_) {
            finished_ = 0;
            ++block_gen_;
            // The next block starts with garbage in shared memory.
            emu_poison_shared();
            cv_.notify_all();
            return;
        }
        if (!cv_.wait_for(l, std::chrono::seconds(emu_watchdog_secs()),
                          [&] { return block_gen_ != g; }))
            emu_fail("block (%u,%u,%u): deadlock, %u of %u threads waited %d s for the block's end",
                     blockIdx.x, blockIdx.y, blockIdx.z, finished_, n_, emu_watchdog_secs());
    }

private:
    std::mutex m_;
    std::condition_variable cv_;
    unsigned n_ = 0, arrived_ = 0, finished_ = 0;
    bool sequential_ = false;
    unsigned long gen_ = 0, block_gen_ = 0;
};

inline BlockSync emu_block;

inline void __syncthreads() { emu_block.sync(); }

inline unsigned atomicMin(unsigned* p, unsigned v) {
    std::atomic_ref<unsigned> a(*p);
    unsigned old = a.load();
    while (v < old && !a.compare_exchange_weak(old, v)) {
    }
    return old;
}

// Milliseconds since the epoch at which the current launch started, or 0.
inline std::atomic<long long> emu_launch_started_ms{0};

inline long long emu_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Starts the watchdog thread once: it stops the process when a launch runs
// longer than EMU_WATCHDOG_SECS (an endless loop in a kernel).
inline void emu_start_watchdog() {
    static std::once_flag once;
    std::call_once(once, [] {
        std::thread([] {
            for (;;) {
                std::this_thread::sleep_for(std::chrono::seconds(1));
                const long long t = emu_launch_started_ms.load();
                if (t != 0 && emu_now_ms() - t > 1000LL * emu_watchdog_secs())
                    emu_fail("a kernel launch ran longer than %d s (endless loop?)",
                             emu_watchdog_secs());
            }
        }).detach();
    });
}

// Worker threads kept between launches (creating a hundred threads per
// launch, under AddressSanitizer, cost more than the kernels).
class ThreadPool {
public:
    // Runs job(t) on threads t = 0..n-1 and waits for all.
    void run(unsigned n, const std::function<void(unsigned)>& job) {
        std::unique_lock<std::mutex> l(m_);
        // Detached: they block in `loop` until the process exits.
        while (workers_ < n) {
            const unsigned id = workers_++;
            std::thread([this, id] { loop(id); }).detach();
        }
        job_ = &job;
        active_ = n;
        remaining_ = n;
        ++generation_;
        cv_.notify_all();
        done_.wait(l, [&] { return remaining_ == 0; });
        job_ = nullptr;
    }

private:
    void loop(unsigned id) {
        unsigned long seen = 0;
        for (;;) {
            const std::function<void(unsigned)>* job;
            {
                std::unique_lock<std::mutex> l(m_);
                cv_.wait(l, [&] { return generation_ != seen && id < active_; });
                seen = generation_;
                job = job_;
            }
            (*job)(id);
            std::lock_guard<std::mutex> l(m_);
            if (--remaining_ == 0) done_.notify_one();
        }
    }

    std::mutex m_;
    std::condition_variable cv_, done_;
    unsigned workers_ = 0;
    const std::function<void(unsigned)>* job_ = nullptr;
    unsigned active_ = 0, remaining_ = 0;
    unsigned long generation_ = 0;
};

inline ThreadPool emu_pool;

// Runs `kernel` over `grid` blocks of `block` threads. With `barriers`,
// every CUDA thread of a block is its own OS thread, meeting at the block's
// barriers; without, the threads of a block run one after another on this
// thread (exact for kernels without `__syncthreads`, and much faster).
template <class F>
void emu_launch(dim3 grid, dim3 block, bool barriers, F kernel) {
    emu_start_watchdog();
    gridDim = grid;
    blockDim = block;
    const unsigned n = block.x * block.y * block.z;
    emu_block.reset(n, !barriers);
    emu_poison_shared();
    emu_launch_started_ms.store(emu_now_ms());
    auto thread_index = [=](unsigned t) {
        return dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
    };
    if (!barriers) {
        for (unsigned bz = 0; bz < grid.z; ++bz)
            for (unsigned by = 0; by < grid.y; ++by)
                for (unsigned bx = 0; bx < grid.x; ++bx) {
                    blockIdx = dim3{bx, by, bz};
                    for (unsigned t = 0; t < n; ++t) {
                        threadIdx = thread_index(t);
                        kernel();
                    }
                    emu_poison_shared();
                }
    } else {
        const std::function<void(unsigned)> job = [&](unsigned t) {
            threadIdx = thread_index(t);
            for (unsigned bz = 0; bz < grid.z; ++bz)
                for (unsigned by = 0; by < grid.y; ++by)
                    for (unsigned bx = 0; bx < grid.x; ++bx) {
                        blockIdx = dim3{bx, by, bz};
                        kernel();
                        // Nobody starts the next block (and reuses the
                        // `static` shared memory) before all finished.
                        emu_block.finish();
                    }
        };
        emu_pool.run(n, job);
    }
    emu_launch_started_ms.store(0);
}
