import assert from "node:assert/strict";
import { readF32, storageBuffer, uploadBuffer, writeBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { attentionBackward, attentionForward } from "../../../src/model/layers/attention.ts";
import type { AttentionShape } from "../../../src/model/layers/attention.ts";
import * as ref from "../../../src/reference/ops.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

// f32 error: a score is a dot of headDim <= 12 products of inputs in [-2, 2) (error ~1e-7), exp and the
// normalisation add a few ulps, and each output sums <= 37 terms below 2 in magnitude: the absolute error
// stays near 1e-6 (measured at most 4e-7 here, 7e-7 at seq 512 x headDim 128), so 1e-5 leaves a 10x
// margin while a wrong index, scale or mask misses by ~1e-1.
const TOL = { rtol: 1e-5, atol: 1e-5 };

interface Buffers {
  qkv: GPUBuffer;
  out: GPUBuffer;
  probs: GPUBuffer;
  dout: GPUBuffer;
  dqkv: GPUBuffer;
  scratch: GPUBuffer;
}

function buffers(
  shape: AttentionShape,
  qkv: Float32Array<ArrayBuffer>,
  dout: Float32Array<ArrayBuffer>,
): Buffers {
  const n = shape.batch * shape.seq;
  const hidden = shape.heads * shape.headDim;
  return {
    qkv: uploadBuffer(gpu, "qkv", qkv),
    out: storageBuffer(gpu, "out", n * hidden * 4),
    probs: storageBuffer(gpu, "probs", shape.batch * shape.heads * shape.seq * shape.seq * 4),
    dout: uploadBuffer(gpu, "dout", dout),
    dqkv: storageBuffer(gpu, "dqkv", n * 3 * hidden * 4),
    scratch: storageBuffer(gpu, "scratch", shape.batch * shape.heads * shape.seq * shape.seq * 4),
  };
}

for (
  const shape of [
    { batch: 2, seq: 5, heads: 3, headDim: 8 },
    // Rows longer than the 32 lanes of a row, ragged products; headDim / 4 odd.
    { batch: 1, seq: 37, heads: 2, headDim: 12 },
    // Products off the vec4 path (the general matmul kernel).
    { batch: 2, seq: 7, heads: 2, headDim: 6 },
    // The crammed model's head.
    { batch: 2, seq: 128, heads: 2, headDim: 64 },
    // Other lanes per row (a tuning option): one invocation per row, and 4 lanes over ragged rows.
    { batch: 2, seq: 128, heads: 2, headDim: 64, lanes: 1 },
    { batch: 1, seq: 37, heads: 2, headDim: 12, lanes: 4 },
  ]
) {
  Deno.test(`attention forward and backward match the reference (${JSON.stringify(shape)})`, async () => {
    const n = shape.batch * shape.seq;
    const hidden = shape.heads * shape.headDim;
    // Wide enough inputs that the softmax is far from uniform.
    const qkv = seededUniform(n * 3 * hidden, 1, -2, 2);
    const dout = seededUniform(n * hidden, 2);
    const b = buffers(shape, qkv, dout);
    submitDispatches(gpu, await attentionForward(kernels, { ...shape, ...b }));
    const expected = ref.attentionForward(qkv, shape);
    assertClose(await readF32(gpu, b.probs), expected.probs, { ...TOL, what: "probs" });
    assertClose(await readF32(gpu, b.out), expected.out, { ...TOL, what: "out" });

    submitDispatches(gpu, await attentionBackward(kernels, { ...shape, ...b }));
    const dqkv = ref.attentionBackward(dout, qkv, expected.probs, shape);
    const first = await readF32(gpu, b.dqkv);
    assertClose(first, dqkv, { ...TOL, what: "dqkv" });
    // Deterministic: a second forward and backward gives the same bits.
    submitDispatches(gpu, await attentionForward(kernels, { ...shape, ...b }));
    submitDispatches(gpu, await attentionBackward(kernels, { ...shape, ...b }));
    assert.deepEqual(await readF32(gpu, b.dqkv), first);
  });
}

Deno.test("attention with a key mask matches the reference and ignores the padded tokens", async () => {
  const shape = { batch: 3, seq: 6, heads: 2, headDim: 16 };
  const n = shape.batch * shape.seq;
  const hidden = shape.heads * shape.headDim;
  // Sequence 0 has 4 real tokens, sequence 1 is unpadded, sequence 2 is all padding (all-zero probs).
  const keyMask = Uint32Array.from([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  const qkv = seededUniform(n * 3 * hidden, 3, -2, 2);
  const dout = seededUniform(n * hidden, 4);
  const b = buffers(shape, qkv, dout);
  const mask = uploadBuffer(gpu, "keyMask", keyMask);
  const forward = await attentionForward(kernels, { ...shape, ...b, keyMask: mask });
  submitDispatches(gpu, forward);
  const expected = ref.attentionForward(qkv, { ...shape, keyMask });
  const probs = await readF32(gpu, b.probs);
  const out = await readF32(gpu, b.out);
  assertClose(probs, expected.probs, { ...TOL, what: "probs" });
  assertClose(out, expected.out, { ...TOL, what: "out" });
  submitDispatches(gpu, await attentionBackward(kernels, { ...shape, ...b }));
  assertClose(await readF32(gpu, b.dqkv), ref.attentionBackward(dout, qkv, expected.probs, shape), {
    ...TOL,
    what: "dqkv",
  });

  // New values at the padded tokens (their q, k and v) leave the real tokens' results bit-identical.
  const changed = qkv.slice();
  const noise = seededUniform(qkv.length, 5, -50, 50);
  for (let t = 0; t < n; t++) {
    if (keyMask[t] === 0) changed.set(noise.subarray(t * 3 * hidden, (t + 1) * 3 * hidden), t * 3 * hidden);
  }
  writeBuffer(gpu, b.qkv, changed);
  submitDispatches(gpu, forward);
  const probs2 = await readF32(gpu, b.probs);
  const out2 = await readF32(gpu, b.out);
  let checked = 0;
  for (let t = 0; t < n; t++) {
    if (keyMask[t] === 0) continue;
    const batch = Math.floor(t / shape.seq);
    const query = t % shape.seq;
    assert.deepEqual(
      out2.subarray(t * hidden, (t + 1) * hidden),
      out.subarray(t * hidden, (t + 1) * hidden),
    );
    for (let h = 0; h < shape.heads; h++) {
      const row = ((batch * shape.heads + h) * shape.seq + query) * shape.seq;
      assert.deepEqual(probs2.subarray(row, row + shape.seq), probs.subarray(row, row + shape.seq));
    }
    checked++;
  }
  assert.equal(checked, 10);
});

// Rows spread over several workgroups, so the mask's flat probs index crosses them; seq 37 runs the
// products on the general matmul kernel, seq 36 on the tiled one (ragged tiles).
for (const seq of [37, 36]) {
  Deno.test(`attention with probability dropout and a key mask matches the reference, forward and backward (seq ${seq})`, async () => {
    const shape = { batch: 2, seq, heads: 2, headDim: 16 };
    const n = shape.batch * shape.seq;
    const hidden = shape.heads * shape.headDim;
    const keyMask = Uint32Array.from({ length: n }, (_, t) => (t % shape.seq < 30 || t < shape.seq ? 1 : 0));
    const qkv = seededUniform(n * 3 * hidden, 6, -2, 2);
    const dout = seededUniform(n * hidden, 7);
    const b = buffers(shape, qkv, dout);
    const seeds = uploadBuffer(gpu, "seeds", Uint32Array.of(5, 0, 0));
    const dropout = { p: 0.25, seeds, seedIndex: 2 };
    const mask = uploadBuffer(gpu, "keyMask", keyMask);
    const steps = [
      ...await attentionForward(kernels, { ...shape, ...b, keyMask: mask, dropout }),
      ...await attentionBackward(kernels, { ...shape, ...b, dropout }),
    ];
    for (const seed of [77, 0xfeedbeef]) {
      writeBuffer(gpu, seeds, Uint32Array.of(seed), 8);
      submitDispatches(gpu, steps);
      const options = { ...shape, keyMask, dropout: { p: 0.25, seed } };
      const expected = ref.attentionForward(qkv, options);
      const undropped = ref.attentionForward(qkv, { ...shape, keyMask });
      assert.ok(
        expected.out.some((v, i) => Math.abs(v - undropped.out[i]) > 0.1),
        "the mask should change the output",
      );
      assertClose(await readF32(gpu, b.out), expected.out, { ...TOL, what: `out, seed ${seed}` });
      assertClose(await readF32(gpu, b.dqkv), ref.attentionBackward(dout, qkv, expected.probs, options), {
        ...TOL,
        what: `dqkv, seed ${seed}`,
      });
    }
  });
}

Deno.test("attention rejects bad shapes and buffers, naming the field", async () => {
  const b = buffers({ batch: 1, seq: 4, heads: 1, headDim: 8 }, new Float32Array(96), new Float32Array(32));
  await assert.rejects(
    () => attentionForward(kernels, { batch: 1, seq: 0, heads: 1, headDim: 8, ...b }),
    /attention seq = 0, expected a positive multiple of 1/,
  );
  await assert.rejects(
    () => attentionForward(kernels, { batch: 2, seq: 4, heads: 1, headDim: 8, ...b }),
    /attention qkv: buffer qkv has 384 bytes, needs 768/,
  );
  const shape = { batch: 1, seq: 4, heads: 1, headDim: 8 };
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, lanes: 3, ...b }),
    /attention lanes = 3, expected a power of two from 1 to 256/,
  );
  const seeds = storageBuffer(gpu, "seeds", 4);
  const { scratch: _, ...noScratch } = b;
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, ...noScratch, dropout: { p: 0.1, seeds, seedIndex: 0 } }),
    /attention dropout needs a scratch buffer/,
  );
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, ...b, dropout: { p: 0.1, seeds, seedIndex: -1 } }),
    /attention dropout seedIndex = -1, expected a non-negative integer/,
  );
});
