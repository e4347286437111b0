// cuda_host.hpp: runs the CUDA kernels of kernels/*.cu on the CPU, unchanged,
// so that their indexing, shared-memory tiling, barriers and atomics are
// tested on machines without a GPU (src/backends/cuda/emulator.rs drives it,
// tests/backends.rs builds it with -fsanitize=address,undefined).
//
// How: blocks run one after another, so a `__shared__` array can be a
// function-local `static` (one block uses it at a time). In a kernel with
// `__syncthreads`, every CUDA thread of a block is a fiber (ucontext) with
// its own stack: the scheduler runs each fiber until it reaches a barrier or
// returns, then starts the next round. Kernels without barriers run their
// threads one after another. All on one OS thread, so the emulation costs
// about as much as the arithmetic (OS threads meeting at barriers cost 1000
// times more). atomicMin is a compare-and-swap loop on std::atomic_ref.
//
// What it catches that a lenient emulation would not:
// * Shared memory holds garbage at the start of every block, as on a GPU:
//   `__shared__` arrays are placed in one linker section (`emu_shared`) that
//   is refilled with fresh pseudo-random bytes before each block, so a kernel
//   that reads a tile element it did not write gets a wrong answer.
// * `__syncthreads` and the end of a block are separate events: a round in
//   which some threads of a block returned while others wait at
//   `__syncthreads` (a divergent barrier, undefined on a GPU) is reported.
// * A watchdog: a launch running longer than EMU_WATCHDOG_SECS (default
//   120; an endless loop) stops the process with a message instead of
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
#include <ucontext.h>
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

#if defined(__SANITIZE_ADDRESS__)
#define EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EMU_ASAN 1
#endif
#endif
#ifdef EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// One CUDA thread of a block with barriers.
struct EmuFiber {
    enum State { Running, AtBarrier, Done };
    ucontext_t ctx;
    std::vector<char> stack;
    State state = Running;
    void* fake_stack = nullptr;  // ASan's bookkeeping across switches
};

inline ucontext_t emu_scheduler;
inline EmuFiber* emu_current = nullptr;
inline const std::function<void()>* emu_body = nullptr;
inline bool emu_barriers = false;
// The scheduler's stack, for ASan's fiber annotations.
inline const void* emu_sched_stack = nullptr;
inline std::size_t emu_sched_stack_size = 0;

// Switches from the current fiber back to the scheduler; `final` when the
// fiber has returned and will not run again.
inline void emu_yield(bool final) {
#ifdef EMU_ASAN
    __sanitizer_start_switch_fiber(final ? nullptr : &emu_current->fake_stack, emu_sched_stack,
                                   emu_sched_stack_size);
#endif
    swapcontext(&emu_current->ctx, &emu_scheduler);
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(emu_current->fake_stack, &emu_sched_stack,
                                    &emu_sched_stack_size);
#endif
}

inline void emu_fiber_main() {
#ifdef EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &emu_sched_stack, &emu_sched_stack_size);
#endif
    (*emu_body)();
    emu_current->state = EmuFiber::Done;
    emu_yield(true);
}

inline void __syncthreads() {
    if (!emu_barriers)
        emu_fail("a kernel run without barriers called __syncthreads "
                 "(declare it as using barriers in run_kernels.cpp)");
    emu_current->state = EmuFiber::AtBarrier;
    emu_yield(false);
}

// Runs one block of `n` threads as fibers, round by round.
inline void emu_run_block(std::vector<EmuFiber>& fibers, unsigned n, dim3 block) {
    for (unsigned t = 0; t < n; ++t) {
        EmuFiber& f = fibers[t];
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data();
        f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = nullptr;
        f.state = EmuFiber::Running;
        makecontext(&f.ctx, emu_fiber_main, 0);
    }
    for (unsigned round = 0;; ++round) {
        unsigned done = 0, waiting = 0;
        for (unsigned t = 0; t < n; ++t) {
            EmuFiber& f = fibers[t];
            if (f.state == EmuFiber::Done) {
                ++done;
                continue;
            }
            f.state = EmuFiber::Running;
            threadIdx = dim3{t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            emu_current = &f;
#ifdef EMU_ASAN
            void* fake = nullptr;
            __sanitizer_start_switch_fiber(&fake, f.stack.data(), f.stack.size());
#endif
            swapcontext(&emu_scheduler, &f.ctx);
#ifdef EMU_ASAN
            __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
            if (f.state == EmuFiber::Done)
                ++done;
            else
                ++waiting;
        }
        if (done == n) return;
        if (done > 0 && waiting > 0)
            emu_fail("block (%u,%u,%u), barrier %u: %u thread(s) returned while %u wait at "
                     "__syncthreads (divergent barrier)",
                     blockIdx.x, blockIdx.y, blockIdx.z, round, done, waiting);
    }
}

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
                    emu_fail("a kernel launch ran longer than %d s (endless loop or deadlock?)",
                             emu_watchdog_secs());
            }
        }).detach();
    });
}

// Runs `kernel` over `grid` blocks of `block` threads; see the file's head.
template <class F>
void emu_launch(dim3 grid, dim3 block, bool barriers, F kernel) {
    emu_start_watchdog();
    gridDim = grid;
    blockDim = block;
    const unsigned n = block.x * block.y * block.z;
    const std::function<void()> body = kernel;
    emu_body = &body;
    emu_barriers = barriers;
    // Kept between launches: allocating 128 stacks per launch is wasted work.
    static std::vector<EmuFiber> fibers;
    if (barriers && fibers.size() < n) {
        fibers.resize(n);
        for (auto& f : fibers)
            if (f.stack.empty()) f.stack.resize(256 << 10);
    }
    emu_launch_started_ms.store(emu_now_ms());
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx) {
                blockIdx = dim3{bx, by, bz};
                // Every block starts with garbage in shared memory.
                emu_poison_shared();
                if (barriers) {
                    emu_run_block(fibers, n, block);
                } else {
                    for (unsigned t = 0; t < n; ++t) {
                        threadIdx = dim3{t % block.x, (t / block.x) % block.y,
                                         t / (block.x * block.y)};
                        kernel();
                    }
                }
            }
    emu_launch_started_ms.store(0);
    emu_body = nullptr;
}
