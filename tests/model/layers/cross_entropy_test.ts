import assert from "node:assert/strict";
import {
  readF32,
  readFloats,
  storageBuffer,
  type StorageType,
  uploadBuffer,
  writeBuffer,
} from "../../../src/gpu/buffers.ts";
import { type Gpu, requestGpu } from "../../../src/gpu/device.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import {
  crossEntropy,
  crossEntropyWorkgroup,
  gatherRows,
  LOSS_TOTALS_BYTES,
  readLossTotals,
  scatterRows,
} from "../../../src/model/layers/cross_entropy.ts";
import { lossScaleBuffer, writeLossScale } from "../../../src/model/loss_scale.ts";
import * as ref from "../../../src/reference/cross_entropy.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

const gpu = await requestGpu();
const kernels = new Kernels(gpu);

/** `values` in a new buffer stored as `type`. */
function upload(label: string, values: Float32Array<ArrayBuffer>, type: StorageType): GPUBuffer {
  return uploadBuffer(gpu, label, type === "f16" ? Float16Array.from(values) : values);
}

/** `values` rounded to `type`, as a buffer of that type holds them. */
function stored(values: Float32Array<ArrayBuffer>, type: StorageType): Float32Array<ArrayBuffer> {
  return type === "f16" ? values.map(Math.f16round) : values;
}

// Storage types of [states, gathered, dgathered, dstates]: the second and third cases convert each way.
const ROW_TYPES: [StorageType, StorageType, StorageType, StorageType][] = [
  ["f32", "f32", "f32", "f32"],
  ["f16", "f16", "f32", "f16"],
  ["f32", "f16", "f16", "f32"],
];

for (const types of ROW_TYPES) {
  const [statesType, gatheredType, dgatheredType, dstatesType] = types;
  const named =
    `states ${statesType}, gathered ${gatheredType}, dgathered ${dgatheredType}, dstates ${dstatesType}`;
  Deno.test(`gatherRows and scatterRows move the first M masked rows and zero the rest (${named})`, async () => {
    const tokens = 11;
    const hidden = 8;
    const rows = 6;
    // What the input buffers hold: the host values rounded to their storage.
    const states = stored(seededUniform(tokens * hidden, 1), statesType);
    const dgathered = stored(seededUniform(rows * hidden, 2), dgatheredType);
    const positions = Uint32Array.from([9, 2, 5, 0, 7, 3]);
    const count = uploadBuffer(gpu, "count", Uint32Array.of(4));
    const positionsBuffer = uploadBuffer(gpu, "positions", positions);
    // Stale contents that the kernels must overwrite.
    const gathered = upload("gathered", seededUniform(rows * hidden, 3), gatheredType);
    const dstates = upload("dstates", seededUniform(tokens * hidden, 4), dstatesType);
    const shape = { tokens, rows, hidden, positions: positionsBuffer, count };
    const steps = [
      ...await gatherRows(kernels, { ...shape, states: upload("states", states, statesType), gathered }),
      ...await scatterRows(kernels, {
        ...shape,
        dgathered: upload("dgathered", dgathered, dgatheredType),
        dstates,
      }),
    ];
    // The same plan serves micro-batches with different M: only `count` changes.
    for (const m of [4, 1, 6]) {
      writeBuffer(gpu, count, Uint32Array.of(m));
      submitDispatches(gpu, steps);
      const expectedGathered = new Float32Array(rows * hidden);
      const expectedDstates = new Float32Array(tokens * hidden);
      for (let r = 0; r < m; r++) {
        const p = positions[r];
        expectedGathered.set(states.subarray(p * hidden, (p + 1) * hidden), r * hidden);
        expectedDstates.set(dgathered.subarray(r * hidden, (r + 1) * hidden), p * hidden);
      }
      assert.deepEqual(
        await readFloats(gpu, gathered, rows * hidden),
        stored(expectedGathered, gatheredType),
        `gathered, M = ${m}`,
      );
      assert.deepEqual(
        await readFloats(gpu, dstates, tokens * hidden),
        stored(expectedDstates, dstatesType),
        `dstates, M = ${m}`,
      );
    }
  });
}

Deno.test("gatherRows sizes an f16 buffer by its 2-byte elements", async () => {
  const b = storageBuffer(gpu, "b", 64);
  const args = { tokens: 4, rows: 2, hidden: 8, positions: b, count: b };
  const halves = storageBuffer(gpu, "halves", 4 * 8 * 2, "f16");
  // 4 x 8 f16 fit in 64 bytes, as 4 x 8 f32 would not.
  await gatherRows(kernels, { ...args, states: halves, gathered: b });
  await assert.rejects(
    () => gatherRows(kernels, { ...args, states: b, gathered: b }),
    /gatherRows states: buffer b has 64 bytes, needs 128/,
  );
});

interface CrossEntropyCase {
  rows: number;
  m: number;
  vocab: number;
  logits: Float32Array<ArrayBuffer>;
  labels: Uint32Array<ArrayBuffer>;
  gradScale: number;
}

interface RunOptions {
  /** Runs of one plan, each on fresh logits (default 1). */
  repeats?: number;
  /** The loss-scale buffer, if any. */
  lossScale?: GPUBuffer;
  /** Called before each run is submitted. */
  beforeRun?: (run: number) => void;
  /** The device (default: the module's, with subgroups). */
  device?: Gpu;
}

/** Runs the cross-entropy as `options` say; returns the last gradient and the loss totals. */
async function runCrossEntropy(c: CrossEntropyCase, options: RunOptions = {}) {
  const { repeats = 1, lossScale, beforeRun } = options;
  const device = options.device ?? gpu;
  const k = options.device ? new Kernels(device) : kernels;
  const logits = uploadBuffer(device, "logits", c.logits);
  const totals = storageBuffer(device, "totals", LOSS_TOTALS_BYTES);
  const steps = await crossEntropy(k, {
    rows: c.rows,
    vocab: c.vocab,
    logits,
    labels: uploadBuffer(device, "labels", c.labels),
    count: uploadBuffer(device, "count", Uint32Array.of(c.m)),
    gradScale: uploadBuffer(device, "gradScale", Float32Array.of(c.gradScale)),
    lossScale,
    totals,
  });
  for (let i = 0; i < repeats; i++) {
    beforeRun?.(i);
    writeBuffer(device, logits, c.logits);
    submitDispatches(device, steps);
  }
  return { dlogits: await readF32(device, logits), totals: await readLossTotals(device, totals) };
}

/**
 * Checks the gradient, computed with loss scale `lossScale`, against the reference within `rtol` and
 * returns the reference's mean loss.
 */
function checkAgainstReference(
  c: CrossEntropyCase,
  dlogits: Float32Array,
  rtol: number,
  lossScale = 1,
): number {
  const expected = ref.crossEntropy(c.logits.subarray(0, c.m * c.vocab), c.labels.subarray(0, c.m), {
    rows: c.m,
    vocab: c.vocab,
  });
  // The reference's gradient is for the mean over M rows (1/M); the kernel's factor is gradScale.
  const factor = c.gradScale * c.m * lossScale;
  const expectedGrad = new Float64Array(c.rows * c.vocab);
  expected.dlogits.forEach((g, i) => expectedGrad[i] = g * factor);
  // The absolute floor only admits entries whose softmax is below f32's resolution of the row (~1e-9).
  assertClose(dlogits, expectedGrad, { rtol, atol: 1e-9 * c.gradScale * lossScale, what: "dlogits" });
  return expected.loss;
}

// M = 5 of 7 rows; vocab 100 gives 25 vec4s per row, fewer than the 256 threads of a row's workgroup.
const CAPACITY_CASE = {
  rows: 7,
  m: 5,
  vocab: 100,
  logits: seededUniform(7 * 100, 5, -6, 6),
  labels: Uint32Array.from([3, 99, 0, 42, 42, 8, 8]),
  gradScale: 1 / 5,
};

/**
 * The module's device as the cross-entropy sees it when its workgroups cannot hold a row (at most 32
 * invocations, a limit no real device has): it reads each row twice instead.
 */
const streaming: Gpu = {
  ...gpu,
  limits: {
    ...gpu.limits,
    maxComputeInvocationsPerWorkgroup: 32,
    maxComputeWorkgroupSizeX: 32,
  } as GPUSupportedLimits,
};

Deno.test("crossEntropyWorkgroup holds a row in registers where the device's workgroups are large enough", () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 };
  assert.deepEqual(crossEntropyWorkgroup(100, limits), { resident: true, size: 64 });
  assert.deepEqual(crossEntropyWorkgroup(2052, limits), { resident: true, size: 128 });
  assert.deepEqual(crossEntropyWorkgroup(32768, limits), { resident: true, size: 1024 });
  assert.deepEqual(crossEntropyWorkgroup(32772, limits), { resident: false, size: 256 });
  assert.deepEqual(crossEntropyWorkgroup(32768, { ...limits, maxComputeWorkgroupSizeX: 256 }), {
    resident: false,
    size: 256,
  });
  assert.deepEqual(crossEntropyWorkgroup(100, streaming.limits), { resident: false, size: 256 });
});

Deno.test("crossEntropy matches the reference for M rows of a larger capacity: row in registers or read twice, with subgroups and without", async () => {
  const c = CAPACITY_CASE;
  for (const device of [gpu, await requestGpu({ subgroups: false }), streaming]) {
    const { dlogits, totals } = await runCrossEntropy(c, { repeats: 2, device });
    // f32: exp and the row sum of 100 terms carry ~1e-6 relative error.
    const loss = checkAgainstReference(c, dlogits, 1e-5);
    // Two runs: the totals add up.
    assert.equal(totals.count, 2 * c.m);
    assertClose([totals.sum / totals.count], [loss], { rtol: 1e-5, what: "mean loss" });
  }
});

Deno.test("crossEntropy is stable for huge logits and wide rows", async () => {
  const rows = 3;
  const vocab = 2052; // 513 vec4s: more than one per thread, not a multiple of the workgroup
  const logits = seededUniform(rows * vocab, 6, -8, 8);
  // Row 0 sits near +3e4 (exp would overflow without the max), row 1 near -3e4 (would underflow to a zero
  // sum), row 2 has one dominant logit (the softmax is a near-onehot).
  for (let i = 0; i < vocab; i++) {
    logits[i] += 30000;
    logits[vocab + i] -= 30000;
  }
  logits[2 * vocab + 17] = 80;
  const c = { rows, m: rows, vocab, logits, labels: Uint32Array.from([5, 2051, 17]), gradScale: 0.5 / rows };
  for (const device of [gpu, streaming]) {
    const { dlogits, totals } = await runCrossEntropy(c, { device });
    // Near 3e4 an f32 logit's ulp is 2e-3: the differences to the row max are exact (same binade), so the
    // error is still that of exp and the sum (~1e-6 relative); the losses (~8) carry ~1e-6 too.
    const loss = checkAgainstReference(c, dlogits, 1e-5);
    assert.ok(dlogits.every(Number.isFinite));
    assertClose([totals.sum / totals.count], [loss], { rtol: 1e-5, what: "mean loss" });
  }
});

Deno.test("a loss scale multiplies the gradient, read when the dispatch runs, and leaves the loss alone", async () => {
  const c = CAPACITY_CASE;
  const plain = await runCrossEntropy(c);
  // A power of two scales every rounding exactly: 1024 x the unscaled gradient, bit for bit.
  const lossScale = lossScaleBuffer(gpu, 1024);
  const scaled = await runCrossEntropy(c, { lossScale });
  assert.deepEqual(scaled.dlogits, plain.dlogits.map((g) => g * 1024));
  assert.deepEqual(scaled.totals, plain.totals);
  const loss = checkAgainstReference(c, scaled.dlogits, 1e-5, 1024);
  assertClose([scaled.totals.sum / scaled.totals.count], [loss], { rtol: 1e-5, what: "mean loss" });
  // The optimizer rewrites the scale between steps: a planned dispatch reads it when it runs. A scale of 1
  // changes nothing.
  const rescaled = await runCrossEntropy(c, {
    repeats: 2,
    lossScale,
    beforeRun: (run) => writeLossScale(gpu, lossScale, run === 0 ? 1024 : 1),
  });
  assert.deepEqual(rescaled.dlogits, plain.dlogits);
  assert.deepEqual(rescaled.totals, { sum: 2 * plain.totals.sum, count: 2 * plain.totals.count });
});

Deno.test("crossEntropy rejects a vocabulary that is not a multiple of 4", async () => {
  const b = storageBuffer(gpu, "b", 64);
  await assert.rejects(
    () =>
      crossEntropy(kernels, {
        rows: 2,
        vocab: 6,
        logits: b,
        labels: b,
        count: b,
        gradScale: b,
        totals: b,
      }),
    /crossEntropy vocab = 6, expected a positive multiple of 4/,
  );
});
