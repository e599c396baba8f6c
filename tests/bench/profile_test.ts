import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { tiny } from "../../src/model/config.ts";
import { groupByKernel, profileStep } from "../../src/bench/profile.ts";

Deno.test("groupByKernel sums dispatches by kernel, most time first", () => {
  const grouped = groupByKernel([
    { kernel: "layernorm.layernorm_forward", ms: 1 },
    { kernel: "matmul.matmul_tiled", ms: 2 },
    { kernel: "layernorm.layernorm_forward", ms: 2 },
    { kernel: "optimizer.adamw", ms: 1 },
    { kernel: "matmul.matmul_tiled", ms: 2 },
  ]);
  assert.deepEqual(grouped, [
    { bench: "profile_kernel", kernel: "matmul.matmul_tiled", count: 2, ms: 4, share: 0.5 },
    { bench: "profile_kernel", kernel: "layernorm.layernorm_forward", count: 2, ms: 3, share: 0.375 },
    { bench: "profile_kernel", kernel: "optimizer.adamw", count: 1, ms: 1, share: 0.125 },
  ]);
});

/**
 * Dispatches per step of the tiny model (2 layers, GELU, scaled sinusoid) outside the matmuls: LayerNorm
 * forward 4 per layer (2, and 2 recomputed in the backward) + embedding + final, backward 2 per layer +
 * final + embedding; GELU forward twice per layer (once recomputed).
 */
const TINY_COUNTS: Record<string, number> = {
  "optimizer.zero_buffer": 1,
  "embedding.embedding_forward_scaled": 1,
  "layernorm.layernorm_forward": 10,
  "attention.softmax_forward_resident": 2,
  "activation.gelu_forward": 4,
  "cross_entropy.gather_rows": 1,
  "cross_entropy.cross_entropy": 1,
  "cross_entropy.loss_total": 1,
  "cross_entropy.zero_rows": 1,
  "cross_entropy.scatter_rows": 1,
  "layernorm.layernorm_backward": 6,
  "layernorm.layernorm_param_grads": 6,
  "activation.gelu_backward": 2,
  "attention.softmax_backward": 2,
  "embedding.embedding_backward_word": 1,
  "embedding.embedding_backward_carry": 1,
  "optimizer.grad_sum_squares": 1,
  "optimizer.grad_norm_finish": 1,
  "optimizer.adamw": 1,
};

const options = { microBatch: 2, warmupSteps: 1, steps: 2, profiledSteps: 2 };

Deno.test("profileStep times every dispatch of the trainer's step and groups them by kernel", async () => {
  const gpu = await requestGpu();
  assert.ok(gpu.hasTimestamps, "the CPU adapter has timestamp-query");
  const { step, kernels, dispatches } = await profileStep(new Kernels(gpu), tiny, options);

  assert.equal(dispatches.length, step.dispatches);
  assert.deepEqual(dispatches.map((d) => d.index), dispatches.map((_, i) => i));
  assert.equal(dispatches[0].kernel, "optimizer.zero_buffer");
  assert.equal(dispatches.at(-1)!.kernel, "optimizer.adamw");
  const counts = Object.fromEntries(kernels.map((k) => [k.kernel, k.count]));
  const matmuls = Object.keys(counts).filter((name) => name.startsWith("matmul."));
  for (const name of matmuls) delete counts[name];
  assert.deepEqual(counts, TINY_COUNTS);
  // At least the 6 products per layer forward (4 projections, 2 in the attention) and 12 backward (8 and
  // 4), and the decoder's 3 (split-K adds sums).
  const matmulCount = kernels.filter((k) => k.kernel.startsWith("matmul.")).reduce((n, k) => n + k.count, 0);
  assert.ok(matmulCount >= 2 * 18 + 3, `${matmulCount} matmul dispatches`);
  assert.equal(kernels.reduce((n, k) => n + k.count, 0), step.dispatches);

  assert.ok(dispatches.every((d) => d.ms >= 0 && d.workgroups.length === 3));
  assert.ok(kernels.every((k, i) => i === 0 || kernels[i - 1].ms >= k.ms), "most time first");
  const near = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 2e-3 * b, `${what}: ${a} vs ${b}`);
  near(kernels.reduce((s, k) => s + k.share, 0), 1, "shares");
  near(kernels.reduce((s, k) => s + k.ms, 0), step.gpu_ms!, "kernel ms");
  near(Object.values(step.families!).reduce((s, ms) => s + ms, 0), step.gpu_ms!, "family ms");
  assert.deepEqual(
    Object.keys(step.families!).sort(),
    ["activation", "attention", "cross_entropy", "embedding", "layernorm", "matmul", "optimizer"],
  );
  assert.equal(step.timestamps, true);
  assert.equal(step.micro_batch, 2);
  assert.equal(step.steps, 2);
  assert.ok(step.gpu_ms! > 0 && step.gpu_span_ms! >= step.gpu_ms! * 0.99, `span ${step.gpu_span_ms}`);
  near(step.busy_over_wall!, step.gpu_ms! / step.wall_ms, "busy over wall");
  near(step.tokens_per_s, (2 * tiny.maxSeqLen) / (step.wall_ms / 1000), "tokens/s");
});

Deno.test("profileStep without timestamp-query measures the wall time only", async () => {
  const gpu = await requestGpu({ timestamps: false });
  const { step, kernels, dispatches } = await profileStep(new Kernels(gpu), tiny, options);
  assert.deepEqual([kernels, dispatches], [[], []]);
  assert.equal(step.timestamps, false);
  assert.deepEqual(
    [step.gpu_ms, step.gpu_span_ms, step.busy_over_wall, step.families],
    [null, null, null, null],
  );
  assert.ok(step.wall_ms > 0 && step.tokens_per_s > 0 && step.dispatches > 0);
});
