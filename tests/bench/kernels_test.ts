import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import type { ModelBatch } from "../../src/model/model.ts";
import { benchKernels, kernelCases } from "../../src/bench/kernels.ts";

// The tiny model at micro-batch 2: N = 32 tokens of H = 32, I = 64, 4 heads of 8, seq 16, vocab 96, a
// masked-row capacity of R = 4 and 20288 parameters. The batch has 10 distinct ids and M = 3 labels.
const batch: ModelBatch = {
  inputIds: Uint32Array.from({ length: 32 }, (_, t) => 5 + (t % 10)),
  labelPositions: Uint32Array.of(1, 5, 9),
  labelIds: Uint32Array.of(20, 21, 22),
};

/** Bytes of each case, worked out by hand from the shapes above (f32 and u32 elements times 4). */
const TINY_BYTES: Record<string, number> = {
  // the bandwidth reference: N x I = 32 x 64 read and written
  copy: 2 * 2048 * 4,
  // ids 32 + 10 distinct word rows of 32 + position table 16 x 32 + x 32 x 32
  embedding_forward: (32 + 320 + 512 + 1024) * 4,
  // x and y 32 x 32, weight and bias 32, mean and rstd 32
  layernorm_forward: (2048 + 64 + 64) * 4,
  // dy, x, residual, dx 32 x 32; weight 32; mean, rstd 32; dweight and dbias read and written
  layernorm_backward: (4096 + 32 + 64 + 128) * 4,
  gelu_forward: 2 * 2048 * 4,
  gelu_backward: 3 * 2048 * 4,
  // probs 2 x 4 x 16 x 16 = 2048. Forward: q, k, v read, out written (32 x 32 each); scores written,
  // read, probs written, read.
  attention_forward: (4 * 1024 + 4 * 2048) * 4,
  // dout (twice), v, dv, q, k, dq, dk (32 x 32 each); probs read for dV, grads written, probs and grads
  // read and dS written, dS read for dQ and for dK.
  attention_backward: (8 * 1024 + 7 * 2048) * 4,
  softmax_forward: 2 * 2048 * 4,
  softmax_backward: 3 * 2048 * 4,
  // dx, positions 32, ids 10, dword rows 2 x 10 x 32, the sinusoid table 512
  embedding_backward: (1024 + 32 + 10 + 640 + 512) * 4,
  // positions 3, rows 3 x 32 read, gathered 4 x 32 written
  gather_rows: (3 + 96 + 128) * 4,
  // labels 3, logits 3 x 96 read and 4 x 96 written, row losses 4 written and read
  cross_entropy: (3 + 288 + 384 + 8) * 4,
  // dstates 32 x 32 zeroed, positions 3, 3 rows read and written
  scatter_rows: (1024 + 3 + 192) * 4,
  dropout: 2 * 1024 * 4,
  // grads 20288, 20 partials written and read
  grad_norm: (20288 + 40) * 4,
  // grads, params, m, v read, params, m, v written, 317 decay flags
  adamw: (7 * 20288 + 317) * 4,
  zero_buffer: 20288 * 4,
};

Deno.test("kernelCases counts the bytes each call moves", () => {
  const cases = kernelCases(tiny, 2, batch);
  assert.deepEqual(cases.map((c) => c.name), Object.keys(TINY_BYTES));
  for (const c of cases) assert.equal(c.bytes, TINY_BYTES[c.name], c.name);
  const flops = Object.fromEntries(cases.filter((c) => c.flops !== null).map((c) => [c.name, c.flops]));
  // 2 x 4 (batch, head) pairs of 16 x 16 x 8 products, 2 * 16 * 16 * 8 FLOPs each: 2 in the forward, 4 back.
  assert.deepEqual(flops, { attention_forward: 2 * 16384 * 2, attention_backward: 4 * 16384 * 2 });
});

Deno.test("kernelCases follows the configured activation and position embedding", () => {
  const config: ModelConfig = { ...tiny, ffn: "gelu-glu", positions: "learned" };
  const cases = Object.fromEntries(kernelCases(config, 2, batch).map((c) => [c.name, c]));
  assert.equal(cases.gelu_forward, undefined);
  // h 32 x 64 read, out 32 x 32 written; dout 32 x 32, h read, dh written.
  assert.equal(cases.glu_forward.bytes, (2048 + 1024) * 4);
  assert.equal(cases.glu_backward.bytes, (1024 + 2 * 2048) * 4);
  // The learned table's gradient (16 x 32) read and written instead of the scale's reduction.
  assert.equal(cases.embedding_backward.bytes, (1024 + 32 + 10 + 640 + 2 * 512) * 4);
});

Deno.test("benchKernels runs every case and reports consistent figures", async () => {
  const k = new Kernels(await requestGpu());
  const bandwidth = 1e9;
  const results = [];
  for await (const r of benchKernels(k, tiny, 2, { warmupSeconds: 0.002, timedSeconds: 0.002, bandwidth })) {
    results.push(r);
  }
  assert.deepEqual(results.map((r) => r.name), Object.keys(TINY_BYTES));
  const labels = Object.fromEntries(results.map((r) => [r.name, r.kernels]));
  assert.deepEqual(labels.layernorm_backward, [
    "layernorm.layernorm_backward",
    "layernorm.layernorm_param_grads",
  ]);
  // The attention's products (dV, grads, then dQ and dK) around its softmax; the softmax cases alone.
  assert.deepEqual(labels.attention_backward, [
    ...Array(2).fill("matmul.matmul_tiled"),
    "attention.softmax_backward",
    ...Array(2).fill("matmul.matmul_tiled"),
  ]);
  // The tiny model's rows of 16 scores fit the register-resident forward.
  assert.deepEqual(labels.softmax_forward, ["attention.softmax_forward_resident"]);
  assert.deepEqual(labels.cross_entropy, ["cross_entropy.cross_entropy", "cross_entropy.loss_total"]);
  assert.deepEqual(labels.adamw, ["optimizer.adamw"]);
  const close = (a: number, b: number) => Math.abs(a - b) <= 2e-3 * Math.abs(b);
  for (const r of results) {
    assert.equal(r.bench, "kernel");
    assert.ok(r.kernels.every((label) => /^[a-z_]+\.[a-z_]+$/.test(label)), r.name);
    assert.ok(r.us > 0, r.name);
    // Figures derived from the time agree with it (to the 4 significant digits printed).
    assert.ok(close(r.gb_s, r.bytes / r.us / 1e3), `${r.name}: ${r.gb_s} GB/s`);
    assert.ok(close(r.vs_bandwidth, (r.us * 1e-6 * bandwidth) / r.bytes), `${r.name}: ${r.vs_bandwidth}`);
    assert.equal(r.tflops === null, r.flops === null, r.name);
    if (r.flops !== null) assert.ok(close(r.tflops!, r.flops / r.us / 1e6), `${r.name}: ${r.tflops}`);
  }
});

Deno.test("benchKernels without a bandwidth compares every case with the copy measured first", async () => {
  const k = new Kernels(await requestGpu());
  const timing = { warmupSeconds: 0.002, timedSeconds: 0.002 };
  const results = [];
  for await (const r of benchKernels(k, tiny, 2, { ...timing, only: ["copy", "gelu_forward"] })) {
    results.push(r);
  }
  const [copy, gelu] = results;
  assert.deepEqual(results.map((r) => r.name), ["copy", "gelu_forward"]);
  assert.deepEqual(copy.kernels, ["convert.convert"]);
  assert.equal(copy.vs_bandwidth, 1);
  const copyRate = copy.bytes / copy.us;
  assert.ok(Math.abs(gelu.vs_bandwidth - gelu.us * copyRate / gelu.bytes) <= 2e-3 * gelu.vs_bandwidth);
});

Deno.test("benchKernels --only runs the named cases and rejects unknown names", async () => {
  const k = new Kernels(await requestGpu());
  const options = { warmupSeconds: 0.002, timedSeconds: 0.002 };
  const config: ModelConfig = { ...tiny, ffn: "gelu-glu", positions: "learned" };
  const names = [];
  for await (
    const r of benchKernels(k, config, 2, { ...options, only: ["glu_backward", "embedding_forward"] })
  ) {
    names.push(r.name);
    assert.ok(r.us > 0);
  }
  assert.deepEqual(names, ["embedding_forward", "glu_backward"]);
  await assert.rejects(
    async () => {
      for await (const _ of benchKernels(k, tiny, 2, { ...options, only: ["softmax"] }));
    },
    /only: no kernel case named softmax; expected among copy, embedding_forward, layernorm_forward/,
  );
});

Deno.test("benchKernels hands softmaxLanes to the attention's softmax passes", async () => {
  const k = new Kernels(await requestGpu());
  const timing = { warmupSeconds: 0.002, timedSeconds: 0.002 };
  const run = async (softmaxLanes: number) => {
    const results = [];
    for await (const r of benchKernels(k, tiny, 2, { ...timing, only: ["softmax_forward"], softmaxLanes })) {
      results.push(r.name);
    }
    return results;
  };
  assert.deepEqual(await run(4), ["softmax_forward"]);
  await assert.rejects(() => run(3), /attention lanes = 3, expected a power of two/);
});
