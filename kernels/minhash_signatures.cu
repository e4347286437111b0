// minhash_signatures: MinHash signatures of a sub-batch of documents.
//
// Reference: ops::minhash_signature. Permutation i maps a shingle hash x to
// a_i * x + b_i mod 2^32; the signature keeps the minimum over the document.
//
// Launch (src/backends/cuda/source.rs, `minhash_shape`): grid.x = tasks,
// grid.y = ceil(num_perm / (blockDim.x * perms_per_thread)), blockDim.x a
// multiple of 32 from MINHASH_MIN_BLOCK to MINHASH_BLOCK, chosen so that few
// threads idle; perms_per_thread is 1 (num_perm <= 64) or 2. A task is
// (doc, start, len) with len <= the task size (src/backends/plan.rs); the
// block stages the task's shingles in shared memory in tiles and every thread
// folds them into the minima of its permutations.
//
// PERF: the inner loop is one shared-memory broadcast load per shingle and,
// per permutation, one IMAD and one IMNMX; two permutations per thread halve
// the loads per operation. Shingles come from global memory once per
// permutation slice (once in total when num_perm <= 256).
//
// DETERMINISM: the output must be pre-filled with EMPTY_SIGNATURE_VALUE; each
// (task, permutation) folds its minimum in with atomicMin, whose result does
// not depend on the order in which blocks run.
#include "common.cuh"

#define MINHASH_BLOCK 128
#define MINHASH_MIN_BLOCK 64
#define MINHASH_PERMS_PER_THREAD 2
#define MINHASH_TILE 1024

extern "C" __global__ void __launch_bounds__(MINHASH_BLOCK) minhash_signatures(
    const u32* __restrict__ hashes,  // the sub-batch's shingle hashes
    const u32* __restrict__ tasks,   // 3 u32 per task: doc, start, len
    const u32* __restrict__ perm_a,  // num_perm odd multipliers
    const u32* __restrict__ perm_b,  // num_perm offsets
    u32* out,                        // docs x num_perm, pre-filled
    u32 num_perm,
    u32 perms_per_thread)            // 1 or 2 (MINHASH_PERMS_PER_THREAD)
{
    __shared__ u32 tile[MINHASH_TILE];

    const u32 task = blockIdx.x;
    const u32 doc = tasks[3u * task];
    const u32 start = tasks[3u * task + 1u];
    const u32 len = tasks[3u * task + 2u];

    const bool two = perms_per_thread >= MINHASH_PERMS_PER_THREAD;
    const u32 p0 = blockIdx.y * (blockDim.x * (two ? 2u : 1u)) + threadIdx.x;
    const u32 p1 = p0 + blockDim.x;
    const bool on0 = p0 < num_perm;
    const bool on1 = two && p1 < num_perm;
    // Inactive lanes still load tiles and meet every barrier; they only skip
    // the final write.
    const u32 a0 = on0 ? perm_a[p0] : 0u, b0 = on0 ? perm_b[p0] : 0u;
    const u32 a1 = on1 ? perm_a[p1] : 0u, b1 = on1 ? perm_b[p1] : 0u;
    u32 m0 = EMPTY_SIGNATURE_VALUE, m1 = EMPTY_SIGNATURE_VALUE;

    for (u32 base = 0; base < len; base += MINHASH_TILE) {
        const u32 n = umin32(MINHASH_TILE, len - base);
        for (u32 i = threadIdx.x; i < n; i += blockDim.x) {
            tile[i] = hashes[start + base + i];
        }
        __syncthreads();
        // `two` is the same for the whole block: no divergence.
        if (two) {
#pragma unroll 8
            for (u32 i = 0; i < n; ++i) {
                const u32 x = tile[i];
                m0 = umin32(m0, a0 * x + b0);
                m1 = umin32(m1, a1 * x + b1);
            }
        } else {
#pragma unroll 8
            for (u32 i = 0; i < n; ++i) {
                m0 = umin32(m0, a0 * tile[i] + b0);
            }
        }
        __syncthreads();
    }

    const u64 row = (u64)doc * num_perm;
    if (on0) atomicMin(&out[row + p0], m0);
    if (on1) atomicMin(&out[row + p1], m1);
}
