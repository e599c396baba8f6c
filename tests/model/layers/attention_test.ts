import assert from "node:assert/strict";
import {
  elementBytes,
  readF32,
  readFloats,
  storageBuffer,
  type StorageType,
  uploadBuffer,
  writeBuffer,
} from "../../../src/gpu/buffers.ts";
import { type Gpu, requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { attentionBackward, attentionForward } from "../../../src/model/layers/attention.ts";
import type { AttentionShape } from "../../../src/model/layers/attention.ts";
import * as ref from "../../../src/reference/attention.ts";
import { assertClose, type CloseOptions, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);
// The same adapter without subgroups: lanes_reduce is then the workgroup-memory tree, and every lane
// count runs as asked (with subgroups, lanes beyond the smallest subgroup are cut to it).
const treeGpu = await requestGpu({ subgroups: false });

// f32 error: a score is a dot of headDim <= 12 products of inputs in [-2, 2) (error ~1e-7), exp and the
// normalisation add a few ulps, and each output sums <= 37 terms below 2 in magnitude: the absolute error
// stays near 1e-6 (measured at most 4e-7 here, 7e-7 at seq 512 x headDim 128), so 1e-5 leaves a 10x
// margin while a wrong index, scale or mask misses by ~1e-1.
const TOL = { rtol: 1e-5, atol: 1e-5 };

// f16 unit roundoff (round to nearest): every store rounds by at most U relative.
const U = 2 ** -11;
// f16 storage rounds qkv and dout (the reference gets the same rounded inputs), then the scores, the
// probabilities, out, the probabilities' gradients, the score gradients and dqkv as each is stored.
// - probs: the scores' rounding moves the scaled scores z by at most U|z|, and a softmax turns such moves
//   into p_j (dz_j - sum_k p_k dz_k), at most 2 U max|z| p_j; |z| < 6 with these inputs, so with the
//   probabilities' own rounding the error stays below 13 U p_j (16 U with margin; measured 3.6 U), plus
//   the spacing of f16 subnormals (2^-24) for the smallest.
// - out and dqkv sum up to seq of those errors times values below 2 (and round once more). Aligned, they
//   would reach ~40 U, but they are independent roundings that mostly cancel: measured at most 3.2 U
//   (1.6e-3), so 10 U (4.9e-3) leaves a 3x margin while a wrong index, scale or mask still misses by
//   ~1e-1 (200 U).
const F16_TOL: Tolerances = { probs: { rtol: 16 * U, atol: 2 ** -24 }, values: { atol: 10 * U } };

interface Tolerances {
  probs: CloseOptions;
  values: CloseOptions;
}

/** The tolerances of a layer with buffers of `types`: f16's if any is f16. */
function tolerances(types: Types): Tolerances {
  return Object.values(types).includes("f16") ? F16_TOL : { probs: TOL, values: TOL };
}

/** Seeded inputs as `type` stores them, so that the reference computes on the same values. */
function inputs(
  length: number,
  seed: number,
  lo: number,
  hi: number,
  type: StorageType = "f32",
): Float32Array<ArrayBuffer> {
  const values = seededUniform(length, seed, lo, hi);
  return type === "f16" ? Float32Array.from(Float16Array.from(values)) : values;
}

interface Buffers {
  qkv: GPUBuffer;
  out: GPUBuffer;
  probs: GPUBuffer;
  dout: GPUBuffer;
  dqkv: GPUBuffer;
  scratch: GPUBuffer;
}

/** Storage types of the layer's buffers; absent ones are f32. */
type Types = Partial<Record<keyof Buffers, StorageType>>;
const ALL_F16: Types = { qkv: "f16", out: "f16", probs: "f16", dout: "f16", dqkv: "f16", scratch: "f16" };

/** The layer's buffers, stored as `types` say. */
function buffers(
  shape: AttentionShape,
  qkv: Float32Array<ArrayBuffer>,
  dout: Float32Array<ArrayBuffer>,
  types: Types = {},
  device: Gpu = gpu,
): Buffers {
  const n = shape.batch * shape.seq;
  const hidden = shape.heads * shape.headDim;
  const probs = shape.batch * shape.heads * shape.seq * shape.seq;
  const make = (name: keyof Buffers, count: number) =>
    storageBuffer(device, name, count * elementBytes(types[name] ?? "f32"), types[name]);
  const upload = (name: keyof Buffers, data: Float32Array<ArrayBuffer>) =>
    uploadBuffer(device, name, types[name] === "f16" ? Float16Array.from(data) : data);
  return {
    qkv: upload("qkv", qkv),
    out: make("out", n * hidden),
    probs: make("probs", probs),
    dout: upload("dout", dout),
    dqkv: make("dqkv", n * 3 * hidden),
    scratch: make("scratch", probs),
  };
}

const cases: [Types, Omit<AttentionShape, "dropout">[]][] = [
  [{}, [
    { batch: 2, seq: 5, heads: 3, headDim: 8 },
    // Rows longer than the default lanes of a row (8 forward, 32 backward), ragged products; headDim / 4 odd.
    { batch: 1, seq: 37, heads: 2, headDim: 12 },
    // Products off the vec4 path (the general matmul kernel).
    { batch: 2, seq: 7, heads: 2, headDim: 6 },
    // The crammed model's head.
    { batch: 2, seq: 128, heads: 2, headDim: 64 },
    // Other lanes per row (a tuning option): one invocation per row, and 4 and 32 lanes over ragged rows.
    { batch: 2, seq: 128, heads: 2, headDim: 64, lanes: 1 },
    { batch: 1, seq: 37, heads: 2, headDim: 12, lanes: 4 },
    { batch: 1, seq: 37, heads: 2, headDim: 12, lanes: 32 },
    // The resident forward at the crammed head with 32 lanes (the default with subgroups of 32, one vec4 a
    // lane), and with each lane holding all four vec4s it can (256 keys at 16 lanes, workgroup tree).
    { batch: 2, seq: 128, heads: 2, headDim: 64, lanes: 32 },
    { batch: 1, seq: 256, heads: 1, headDim: 16, lanes: 16 },
  ]],
  // The crammed head, ragged rows and products, and products off the vec4 path, all stored as f16.
  [ALL_F16, [
    { batch: 2, seq: 128, heads: 2, headDim: 64 },
    { batch: 1, seq: 37, heads: 2, headDim: 12 },
    { batch: 2, seq: 7, heads: 2, headDim: 6 },
  ]],
];
for (const [types, shapes] of cases) {
  const tol = tolerances(types);
  const stored = types === ALL_F16 ? " with f16 storage" : "";
  const devices = types === ALL_F16 ? [gpu] : [gpu, treeGpu];
  for (const [shape, device] of shapes.flatMap((s) => devices.map((d) => [s, d] as const))) {
    const variant = device.hasSubgroups ? "subgroups" : "workgroup tree";
    Deno.test(`attention forward and backward${stored} match the reference (${JSON.stringify(shape)}, ${variant})`, async () => {
      const gpu = device;
      const kernels = new Kernels(gpu);
      const n = shape.batch * shape.seq;
      const hidden = shape.heads * shape.headDim;
      // Wide enough inputs that the softmax is far from uniform.
      const qkv = inputs(n * 3 * hidden, 1, -2, 2, types.qkv);
      const dout = inputs(n * hidden, 2, -1, 1, types.dout);
      const b = buffers(shape, qkv, dout, types, gpu);
      submitDispatches(gpu, await attentionForward(kernels, { ...shape, ...b }));
      const expected = ref.attentionForward(qkv, shape);
      assertClose(await readFloats(gpu, b.probs), expected.probs, { ...tol.probs, what: "probs" });
      assertClose(await readFloats(gpu, b.out), expected.out, { ...tol.values, what: "out" });

      submitDispatches(gpu, await attentionBackward(kernels, { ...shape, ...b }));
      const dqkv = ref.attentionBackward(dout, qkv, expected.probs, shape);
      const first = await readFloats(gpu, b.dqkv);
      assertClose(first, dqkv, { ...tol.values, what: "dqkv" });
      // Deterministic: a second forward and backward gives the same bits.
      submitDispatches(gpu, await attentionForward(kernels, { ...shape, ...b }));
      submitDispatches(gpu, await attentionBackward(kernels, { ...shape, ...b }));
      assert.deepEqual(await readFloats(gpu, b.dqkv), first);
    });
  }
}

// Seq 6 runs softmax_forward, seq 8 softmax_forward_resident.
for (const seq of [6, 8]) {
  Deno.test(`attention with a key mask matches the reference and ignores the padded tokens (seq ${seq})`, async () => {
    const shape = { batch: 3, seq, heads: 2, headDim: 16 };
    const n = shape.batch * shape.seq;
    const hidden = shape.heads * shape.headDim;
    // Sequence 0 has 4 real tokens, sequence 1 is unpadded, sequence 2 is all padding (all-zero probs).
    const keyMask = Uint32Array.from({ length: n }, (_, t) => (t < 4 || (t >= seq && t < 2 * seq) ? 1 : 0));
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
    assert.equal(checked, 4 + seq);
  });
}

// Rows spread over several workgroups, so the mask's flat probs index crosses them; seq 37 runs the
// products on the general matmul kernel, seq 36 on the tiled one (ragged tiles). With f16 storage the
// dropped probabilities (scratch) are f16 too. Each kernel takes each buffer's own type: probs and scratch
// also go f16 alone.
const dropoutCases: [string, Types][] = [
  ["", {}],
  [", f16 storage", ALL_F16],
  [", f16 probs", { probs: "f16" }],
  [", f16 scratch", { scratch: "f16" }],
];
for (const [stored, types] of dropoutCases) {
  const tol = tolerances(types).values;
  for (const seq of [37, 36]) {
    const name = `seq ${seq}${stored}`;
    Deno.test(`attention with probability dropout and a key mask matches the reference, forward and backward (${name})`, async () => {
      const shape = { batch: 2, seq, heads: 2, headDim: 16 };
      const n = shape.batch * shape.seq;
      const hidden = shape.heads * shape.headDim;
      const keyMask = Uint32Array.from(
        { length: n },
        (_, t) => (t % shape.seq < 30 || t < shape.seq ? 1 : 0),
      );
      const qkv = inputs(n * 3 * hidden, 6, -2, 2, types.qkv);
      const dout = inputs(n * hidden, 7, -1, 1, types.dout);
      const b = buffers(shape, qkv, dout, types);
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
        assertClose(await readFloats(gpu, b.out), expected.out, { ...tol, what: `out, seed ${seed}` });
        assertClose(
          await readFloats(gpu, b.dqkv),
          ref.attentionBackward(dout, qkv, expected.probs, options),
          { ...tol, what: `dqkv, seed ${seed}` },
        );
      }
    });
  }
}

Deno.test("attention rejects bad shapes and buffers, naming the field", async () => {
  const shape = { batch: 1, seq: 4, heads: 1, headDim: 8 };
  const b = buffers(shape, new Float32Array(96), new Float32Array(32));
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, seq: 0, ...b }),
    /attention seq = 0, expected a positive multiple of 1/,
  );
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, batch: 2, ...b }),
    /attention qkv: buffer qkv has 384 bytes, needs 768/,
  );
  // Sizes count in each buffer's own element size: 2 bytes for f16.
  const half = buffers(shape, new Float32Array(96), new Float32Array(32), ALL_F16);
  await assert.rejects(
    () => attentionForward(kernels, { ...shape, batch: 2, ...half }),
    /attention qkv: buffer qkv has 192 bytes, needs 384/,
  );
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
