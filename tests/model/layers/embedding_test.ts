import assert from "node:assert/strict";
import { readF32, storageBuffer, uploadBuffer } from "../../../src/gpu/buffers.ts";
import { requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import {
  embeddingBackward,
  embeddingForward,
  packTokenOrder,
  sortTokens,
} from "../../../src/model/layers/embedding.ts";
import * as ref from "../../../src/reference/embedding.ts";
import { sinusoidTable } from "../../../src/model/positions.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

// Forward: one f32 add of two f32 values (one rounding, 6e-8 relative). Backward: each output sums at most
// 24 f32 rows of magnitude < 1 onto an initial value < 1, so its error stays below 24 * 6e-8 ~ 1.5e-6.
const FORWARD_TOL = { rtol: 1e-7, atol: 1e-7 };
const BACKWARD_TOL = { rtol: 2e-6, atol: 2e-6 };

function seededIds(length: number, seed: number, vocab: number): Uint32Array<ArrayBuffer> {
  return Uint32Array.from(seededUniform(length, seed, 0, 1), (u) => Math.floor(u * vocab));
}

/**
 * Runs the scaled-sinusoid backward twice from the same inputs (on `k`'s device) and returns [dword,
 * dscale] of the first run after checking that the second gave the same bits.
 */
async function scaledBackwardTwice(
  k: Kernels,
  shape: { tokens: number; seq: number; hidden: number; vocab: number },
  ids: Uint32Array<ArrayBuffer>,
  dx: GPUBuffer,
  table: GPUBuffer,
  dwordStart: Float32Array<ArrayBuffer>,
): Promise<[Float32Array, Float32Array]> {
  const gpu = k.gpu;
  const tokenOrder = uploadBuffer(gpu, "tokenOrder", packTokenOrder(sortTokens(ids), shape.tokens));
  const results: [Float32Array, Float32Array][] = [];
  for (let run = 0; run < 2; run++) {
    const dword = uploadBuffer(gpu, "dword", dwordStart);
    const dscale = storageBuffer(gpu, "dscale", 4);
    submitDispatches(
      gpu,
      await embeddingBackward(k, {
        ...shape,
        dx,
        tokenOrder,
        dword,
        position: { kind: "scaled-sinusoidal", table, grad: dscale },
      }),
    );
    results.push([await readF32(gpu, dword), await readF32(gpu, dscale)]);
  }
  assert.deepEqual(results[1][0], results[0][0]);
  assert.deepEqual(results[1][1], results[0][1]);
  return results[0];
}

Deno.test("sortTokens buckets positions by id, stably", () => {
  const sorted = sortTokens([3, 1, 3, 0, 1, 3]);
  assert.deepEqual(Array.from(sorted.order), [3, 1, 4, 0, 2, 5]);
  assert.deepEqual(Array.from(sorted.uniqueIds), [0, 1, 3]);
  assert.deepEqual(Array.from(sorted.segmentStart), [0, 1, 3, 6]);

  const ids = seededIds(5000, 7, 300);
  const { order, uniqueIds, segmentStart } = sortTokens(ids);
  assert.deepEqual(Array.from(order).sort((a, b) => a - b), Array.from({ length: ids.length }, (_, i) => i));
  assert.equal(segmentStart[uniqueIds.length], ids.length);
  for (let u = 0; u < uniqueIds.length; u++) {
    if (u > 0) assert.ok(uniqueIds[u] > uniqueIds[u - 1]);
    for (let j = segmentStart[u]; j < segmentStart[u + 1]; j++) {
      assert.equal(ids[order[j]], uniqueIds[u]);
      if (j > segmentStart[u]) assert.ok(order[j] > order[j - 1]);
    }
  }
  assert.throws(() => sortTokens([1, -2]), /id -2 at position 1 is not a u32/);
});

Deno.test("packTokenOrder pads to a fixed size with empty segments", () => {
  const packed = packTokenOrder(sortTokens([2, 0, 2, 2]), 4);
  // order | segmentStart padded with 4 | uniqueIds padded with 0
  assert.deepEqual(Array.from(packed), [1, 0, 2, 3, 0, 1, 4, 4, 4, 0, 2, 0, 0]);
  assert.throws(() => packTokenOrder(sortTokens([1, 2]), 3), /2 sorted positions, expected 3/);
});

interface Case {
  batch: number;
  seq: number;
  hidden: number;
  vocab: number;
}

function setup({ batch, seq, hidden, vocab }: Case, seed: number) {
  const tokens = batch * seq;
  // A small vocabulary relative to the tokens makes long segments (more rows than the kernel's lanes).
  const ids = seededIds(tokens, seed, vocab);
  const word = seededUniform(vocab * hidden, seed + 1);
  const dx = seededUniform(tokens * hidden, seed + 2);
  const dwordStart = seededUniform(vocab * hidden, seed + 3);
  return { tokens, ids, word, dx, dwordStart };
}

for (
  const c of [
    { batch: 2, seq: 7, hidden: 12, vocab: 5 },
    // hidden / 4 = 66 spans two column chunks of the word-gradient kernel; more ids than tokens.
    { batch: 3, seq: 4, hidden: 264, vocab: 40 },
    // 96 tokens: ids of ~16 rows across tile edges; 16 rows per position, two rounds of the learned sum.
    { batch: 16, seq: 6, hidden: 8, vocab: 6 },
  ]
) {
  Deno.test(`embeddings with learned positions match the reference (${JSON.stringify(c)})`, async () => {
    const { tokens, ids, word, dx, dwordStart } = setup(c, 10);
    const maxSeq = c.seq + 2; // the table may be longer than the sequences
    const table = seededUniform(maxSeq * c.hidden, 20);
    const dposStart = seededUniform(maxSeq * c.hidden, 21);
    const shape = { tokens, seq: c.seq, hidden: c.hidden, vocab: c.vocab };
    const x = storageBuffer(gpu, "x", tokens * c.hidden * 4);
    const tableBuffer = uploadBuffer(gpu, "position", table);
    const forward = await embeddingForward(kernels, {
      ...shape,
      ids: uploadBuffer(gpu, "ids", ids),
      word: uploadBuffer(gpu, "word", word),
      position: { kind: "learned", table: tableBuffer },
      x,
    });
    submitDispatches(gpu, forward);
    const expectedX = ref.embeddingForward(ids, word, table.subarray(0, c.seq * c.hidden), shape);
    assertClose(await readF32(gpu, x), expectedX, { ...FORWARD_TOL, what: "x" });

    const dword = uploadBuffer(gpu, "dword", dwordStart);
    const dpos = uploadBuffer(gpu, "dpos", dposStart);
    const backward = await embeddingBackward(kernels, {
      ...shape,
      dx: uploadBuffer(gpu, "dx", dx),
      tokenOrder: uploadBuffer(gpu, "tokenOrder", packTokenOrder(sortTokens(ids), tokens)),
      dword,
      position: { kind: "learned", grad: dpos },
    });
    submitDispatches(gpu, backward);
    const expectedDword = ref.embeddingBackward(dx, ids, shape).map((g, i) => g + dwordStart[i]);
    assertClose(await readF32(gpu, dword), expectedDword, { ...BACKWARD_TOL, what: "dword" });
    const expectedDpos = Float64Array.from(dposStart);
    for (let t = 0; t < tokens; t++) {
      for (let j = 0; j < c.hidden; j++) expectedDpos[(t % c.seq) * c.hidden + j] += dx[t * c.hidden + j];
    }
    assertClose(await readF32(gpu, dpos), expectedDpos, { ...BACKWARD_TOL, what: "dposition" });
  });
}

Deno.test("embeddings with scaled sinusoids match the reference", async () => {
  const c = { batch: 3, seq: 9, hidden: 20, vocab: 6 };
  const { tokens, ids, word, dx, dwordStart } = setup(c, 30);
  const shape = { tokens, seq: c.seq, hidden: c.hidden, vocab: c.vocab };
  const sinusoid = new Float32Array(sinusoidTable(c.seq, c.hidden));
  const scale = 0.37;
  const table = uploadBuffer(gpu, "sinusoid", sinusoid);
  const x = storageBuffer(gpu, "x", tokens * c.hidden * 4);
  submitDispatches(
    gpu,
    await embeddingForward(kernels, {
      ...shape,
      ids: uploadBuffer(gpu, "ids", ids),
      word: uploadBuffer(gpu, "word", word),
      position: {
        kind: "scaled-sinusoidal",
        table,
        scale: uploadBuffer(gpu, "scale", Float32Array.of(scale)),
      },
      x,
    }),
  );
  const scaled = sinusoid.map((v) => Math.fround(scale) * v);
  // The kernel rounds scale * sinusoid to f32 before the add: two roundings.
  assertClose(await readF32(gpu, x), ref.embeddingForward(ids, word, scaled, shape), {
    rtol: 2e-7,
    atol: 2e-7,
    what: "x",
  });

  const dword = uploadBuffer(gpu, "dword", dwordStart);
  const dscale = uploadBuffer(gpu, "dscale", Float32Array.of(0.25));
  submitDispatches(
    gpu,
    await embeddingBackward(kernels, {
      ...shape,
      dx: uploadBuffer(gpu, "dx", dx),
      tokenOrder: uploadBuffer(gpu, "tokenOrder", packTokenOrder(sortTokens(ids), tokens)),
      dword,
      position: { kind: "scaled-sinusoidal", table, grad: dscale },
    }),
  );
  const expectedDword = ref.embeddingBackward(dx, ids, shape).map((g, i) => g + dwordStart[i]);
  assertClose(await readF32(gpu, dword), expectedDword, { ...BACKWARD_TOL, what: "dword" });
  // d loss / d scale = sum over tokens of dx[t] . sinusoid[t % seq].
  let expectedDscale = 0.25;
  for (let i = 0; i < tokens * c.hidden; i++) expectedDscale += dx[i] * sinusoid[i % (c.seq * c.hidden)];
  // 540 products summed in f32 (short serial runs, then trees): the error is a small multiple of
  // 6e-8 * (sum of |terms| ~ 150) ~ 1e-5; measured 8e-7.
  assertClose(await readF32(gpu, dscale), [expectedDscale], { rtol: 0, atol: 1e-5, what: "dscale" });
});

Deno.test("the embedding backward is bit-identical from run to run", async () => {
  const c = { batch: 4, seq: 32, hidden: 64, vocab: 9 }; // ~14 rows per id
  const { tokens, ids, dx, dwordStart } = setup(c, 40);
  const shape = { tokens, seq: c.seq, hidden: c.hidden, vocab: c.vocab };
  const table = uploadBuffer(gpu, "sinusoid", new Float32Array(sinusoidTable(c.seq, c.hidden)));
  const dxBuffer = uploadBuffer(gpu, "dx", dx);
  const results = await scaledBackwardTwice(kernels, shape, ids, dxBuffer, table, dwordStart);
  assert.notEqual(results[1][0], 0);
});

Deno.test("one id thousands of times, among hundreds of others: the word and scale gradients match the reference, bit-identical across runs, with subgroups and without", async () => {
  for (const subgroups of [true, false]) {
    const device = await requestGpu({ subgroups });
    assert.equal(device.hasSubgroups, subgroups, `${device.name}: subgroups ${device.hasSubgroups}`);
    await checkFrequentId(new Kernels(device));
  }
});

/** 5000 tokens, 60% of them one id, through the scaled-sinusoid backward on `k`'s device. */
async function checkFrequentId(k: Kernels) {
  const gpu = k.gpu;
  // 5000 tokens: 78 tiles of 64 and a partial one. 3000 of them are id 7, whose rows span ~47 tiles; 700
  // ids of vocabulary make more segment slots than the slot search's first round of 256 probes, and 66
  // vec4 columns a second, partial column chunk.
  const c = { batch: 5, seq: 1000, hidden: 264, vocab: 700 };
  const { tokens, ids, dx, dwordStart } = setup(c, 50);
  const every = seededUniform(tokens, 51, 0, 1);
  for (let t = 0; t < tokens; t++) if (every[t] < 0.6) ids[t] = 7;
  const shape = { tokens, seq: c.seq, hidden: c.hidden, vocab: c.vocab };
  const sinusoid = new Float32Array(sinusoidTable(c.seq, c.hidden));
  const table = uploadBuffer(gpu, "sinusoid", sinusoid);
  const dxBuffer = uploadBuffer(gpu, "dx", dx);
  const results = await scaledBackwardTwice(k, shape, ids, dxBuffer, table, dwordStart);
  const expectedDword = ref.embeddingBackward(dx, ids, shape).map((g, i) => g + dwordStart[i]);
  // Id 7 sums ~3000 rows of [-1, 1) in f32, 16 in order per lane of a tile, then the lanes and the ~47
  // tile sums in order:
  // ~3000 roundings of partial sums up to ~100 (6e-6 each), mostly cancelling (measured 1.2e-5).
  assertClose(results[0], expectedDword, { rtol: 0, atol: 5e-5, what: "dword" });
  let expectedDscale = 0;
  let magnitude = 0;
  for (let i = 0; i < tokens * c.hidden; i++) {
    const term = dx[i] * sinusoid[i % (c.seq * c.hidden)];
    expectedDscale += term;
    magnitude += Math.abs(term);
  }
  // 1.3M products summed in f32 by serial runs of ~130 and workgroup sums: the worst case is ~150 roundings of
  // 6e-8 * magnitude; random-signed, they measured 2e-10 * magnitude.
  assertClose(results[1], [expectedDscale], { rtol: 0, atol: 1e-8 * magnitude, what: "dscale" });
}

Deno.test("a batch of a single id: within one tile, and across two tiles (the second partial)", async () => {
  for (const tokens of [20, 100]) {
    const shape = { tokens, seq: tokens, hidden: 12, vocab: 3 };
    const ids = new Uint32Array(tokens).fill(2);
    const dx = seededUniform(tokens * shape.hidden, 60);
    const dwordStart = seededUniform(shape.vocab * shape.hidden, 61);
    const dword = uploadBuffer(gpu, "dword", dwordStart);
    const dpos = storageBuffer(gpu, "dpos", tokens * shape.hidden * 4);
    submitDispatches(
      gpu,
      await embeddingBackward(kernels, {
        ...shape,
        dx: uploadBuffer(gpu, "dx", dx),
        tokenOrder: uploadBuffer(gpu, "tokenOrder", packTokenOrder(sortTokens(ids), tokens)),
        dword,
        position: { kind: "learned", grad: dpos },
      }),
    );
    const expected = ref.embeddingBackward(dx, ids, shape).map((g, i) => g + dwordStart[i]);
    // Sums of 100 rows: 100 * 6e-8 relative to partial sums of ~10.
    assertClose(await readF32(gpu, dword), expected, {
      rtol: 2e-6,
      atol: 1e-5,
      what: `dword, ${tokens} tokens`,
    });
    assertClose(await readF32(gpu, dpos), dx, { rtol: 0, atol: 0, what: `dposition, ${tokens} tokens` });
  }
});
