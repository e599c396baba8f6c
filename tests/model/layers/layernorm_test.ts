import assert from "node:assert/strict";
import { type Gpu, requestGpu } from "../../../src/gpu/device.ts";
import {
  elementBytes,
  readF32,
  readFloats,
  storageBuffer,
  type StorageType,
  uploadBuffer,
} from "../../../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../../../src/gpu/kernels.ts";
import { layerNormBackward, layerNormForward } from "../../../src/model/layers/layernorm.ts";
import * as ref from "../../../src/reference/layernorm.ts";
import { assertClose, seededUniform } from "../../_helpers.ts";

// Tolerances. Each row is reduced over `cols` <= 300 f32 terms, whose rounding error grows like
// sqrt(cols) * 6e-8 relative to the terms (1e-6 at 300); the outputs are O(1) (|xhat| <= 3, |weight| <=
// 1.5), so atol 5e-6 with rtol 1e-6. dweight and dbias are sums over 37 rows of O(1) products, on top of
// starting values of O(1): the same bounds hold. llvmpipe measures a quarter of these or less.
const ATOL = 5e-6;
const RTOL = 1e-6;
// An output stored as f16: WGSL rounds to either neighbouring f16, so within one f16 ulp, 2^-10 relative
// (round-to-nearest would halve that to 2^-11), and it may flush f16 subnormals (below 2^-14) to zero.
const F16_RTOL = 2 ** -10;
const F16_ATOL = 2 ** -14;

/** Rows with a mean far from 0 (`center` +- 1), so the variance must not be computed as E[x^2] - E[x]^2. */
function rowsAround(center: number, rows: number, cols: number, seed: number): Float32Array<ArrayBuffer> {
  return seededUniform(rows * cols, seed, center - 1, center + 1);
}

function rowsAround3(rows: number, cols: number, seed: number): Float32Array<ArrayBuffer> {
  return rowsAround(3, rows, cols, seed);
}

/**
 * Runs the forward on rows around `center` (default 3; row 0 constant: variance 0, y = bias) with y stored
 * as `yType`.
 */
async function checkForward(
  rows: number,
  cols: number,
  eps: number,
  yType: StorageType,
  center = 3,
  gpu?: Gpu,
  yAtol = ATOL,
): Promise<void> {
  gpu ??= await requestGpu();
  const k = new Kernels(gpu);
  const xHost = rowsAround(center, rows, cols, 1);
  xHost.fill(5, 0, cols); // rstd = 1 / sqrt(eps)
  const weightHost = seededUniform(cols, 2, 0.5, 1.5);
  const biasHost = seededUniform(cols, 3, -0.5, 0.5);
  const y = storageBuffer(gpu, "y", rows * cols * elementBytes(yType), yType);
  const mean = storageBuffer(gpu, "mean", rows * 4);
  const rstd = storageBuffer(gpu, "rstd", rows * 4);
  submitDispatches(
    gpu,
    await layerNormForward(k, {
      x: uploadBuffer(gpu, "x", xHost),
      weight: uploadBuffer(gpu, "weight", weightHost),
      bias: uploadBuffer(gpu, "bias", biasHost),
      y,
      mean,
      rstd,
      rows,
      cols,
      eps,
    }),
  );
  const expected = ref.layerNormForward(xHost, weightHost, biasHost, { rows, cols, eps });
  const what = `${rows}x${cols}`;
  // An f16 y adds the rounding of the store to the f32 result's error.
  const [atol, rtol] = yType === "f16" ? [yAtol + F16_ATOL, RTOL + F16_RTOL] : [yAtol, RTOL];
  assertClose(await readFloats(gpu, y), expected.y, { atol, rtol, what: `${what} y` });
  assertClose(await readF32(gpu, mean), expected.mean, { rtol: RTOL, what: `${what} mean` });
  assertClose(await readF32(gpu, rstd), expected.rstd, { rtol: 4 * RTOL, what: `${what} rstd` });
}

Deno.test("layernorm forward matches the float64 reference, with a constant row and rows of 13 and 75 vec4s (not multiples of the workgroup), with subgroups and without", async () => {
  for (const subgroups of [true, false]) {
    const gpu = await requestGpu({ subgroups });
    assert.equal(gpu.hasSubgroups, subgroups, `${gpu.name}: subgroups ${gpu.hasSubgroups}`);
    await checkForward(5, 52, 1e-12, "f32", 3, gpu);
    await checkForward(3, 300, 1e-5, "f32", 3, gpu);
  }
});

Deno.test("layernorm forward keeps its precision on rows whose mean is 50 standard deviations from 0", async () => {
  // E[x^2] - E[x]^2 in f32 would lose about 1e-4 of the variance here (x^2 near 900, its ulp 6e-5, against a
  // variance of 1/3), which moves y by about 1e-4; the two passes keep y's error at the rounding of the
  // mean, a few ulps of 30 (1.9e-6 each) times rstd (1.7): 7.7e-6 measured with subgroups of 8 (a
  // sequential subgroupAdd), 2.6e-6 with the tree.
  for (const subgroups of [true, false]) {
    await checkForward(4, 768, 1e-12, "f32", 30, await requestGpu({ subgroups }), 2e-5);
  }
});

Deno.test("layernorm forward stores y as f16, within an f16 rounding of the float64 reference", async () => {
  await checkForward(5, 52, 1e-12, "f16");
  await checkForward(301, 768, 1e-12, "f16");
});

/** Inputs of a backward: weight and bias live in one flat parameter buffer, as the model keeps them. */
function backwardCase(rows: number, cols: number) {
  const x = rowsAround3(rows, cols, 4);
  const weight = seededUniform(cols, 5, 0.5, 1.5);
  const dy = seededUniform(rows * cols, 6);
  const forward = ref.layerNormForward(x, weight, new Float64Array(cols), { rows, cols, eps: 1e-12 });
  // The GPU backward reads f32 mean and rstd: give the reference the same rounded values.
  const mean = Float32Array.from(forward.mean);
  const rstd = Float32Array.from(forward.rstd);
  const initialGrads = seededUniform(2 * cols, 7);
  return { x, weight, dy, mean, rstd, initialGrads };
}

Deno.test("layernorm backward matches the reference and accumulates dweight/dbias into existing gradients, with subgroups and without", async () => {
  for (const subgroups of [true, false]) {
    await checkBackwardAccumulates(await requestGpu({ subgroups }), subgroups);
  }
});

/** Two micro-batches of 37 rows of 300 columns, dweight and dbias inside one gradient buffer. */
async function checkBackwardAccumulates(gpu: Gpu, subgroups: boolean) {
  assert.equal(gpu.hasSubgroups, subgroups, `${gpu.name}: subgroups ${gpu.hasSubgroups}`);
  const k = new Kernels(gpu);
  const rows = 37; // 3 blocks of 16 rows, the last one partial; 8 rows at a time for 300 columns
  const cols = 300;
  const c = backwardCase(rows, cols);
  // dweight and dbias are sub-ranges of one gradient buffer at 256-byte-aligned offsets, like the flat layout.
  const grads = storageBuffer(gpu, "grads", 2048 * 4);
  gpu.device.queue.writeBuffer(grads, 0, c.initialGrads, 0, cols);
  gpu.device.queue.writeBuffer(grads, 1024 * 4, c.initialGrads, cols, cols);
  const dx = storageBuffer(gpu, "dx", rows * cols * 4);
  const step = await layerNormBackward(k, {
    dy: uploadBuffer(gpu, "dy", c.dy),
    x: uploadBuffer(gpu, "x", c.x),
    weight: uploadBuffer(gpu, "weight", c.weight),
    mean: uploadBuffer(gpu, "mean", c.mean),
    rstd: uploadBuffer(gpu, "rstd", c.rstd),
    dx,
    dweight: { buffer: grads, offset: 0, size: cols * 4 },
    dbias: { buffer: grads, offset: 1024 * 4, size: cols * 4 },
    rows,
    cols,
    rowsPerBlock: 16,
  });
  submitDispatches(gpu, [...step, ...step]); // two micro-batches
  const expected = ref.layerNormBackward(c.dy, c.x, c.weight, c.mean, c.rstd, { rows, cols });
  assertClose(await readF32(gpu, dx), expected.dx, { atol: ATOL, rtol: RTOL, what: "dx" });
  const g = await readF32(gpu, grads);
  const twice = (d: Float64Array, start: number) => d.map((v, i) => c.initialGrads[start + i] + 2 * v);
  assertClose(g.subarray(0, cols), twice(expected.dweight, 0), { atol: ATOL, rtol: RTOL, what: "dweight" });
  assertClose(g.subarray(1024, 1024 + cols), twice(expected.dbias, cols), {
    atol: ATOL,
    rtol: RTOL,
    what: "dbias",
  });
  assert.ok(g.subarray(cols, 1024).every((v) => v === 0), "the backward wrote outside dweight");
}

Deno.test("layernorm backward adds the residual gradient into dx", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const rows = 19;
  const cols = 52;
  const c = backwardCase(rows, cols);
  const residual = seededUniform(rows * cols, 11);
  const dx = storageBuffer(gpu, "dx", rows * cols * 4);
  const step = await layerNormBackward(k, {
    dy: uploadBuffer(gpu, "dy", c.dy),
    x: uploadBuffer(gpu, "x", c.x),
    weight: uploadBuffer(gpu, "weight", c.weight),
    mean: uploadBuffer(gpu, "mean", c.mean),
    rstd: uploadBuffer(gpu, "rstd", c.rstd),
    dx,
    residual: uploadBuffer(gpu, "residual", residual),
    dweight: storageBuffer(gpu, "dweight", cols * 4),
    dbias: storageBuffer(gpu, "dbias", cols * 4),
    rows,
    cols,
  });
  submitDispatches(gpu, step);
  const expected = ref.layerNormBackward(c.dy, c.x, c.weight, c.mean, c.rstd, { rows, cols });
  const withResidual = expected.dx.map((v, i) => v + residual[i]);
  assertClose(await readF32(gpu, dx), withResidual, { atol: ATOL, rtol: RTOL, what: "dx + residual" });
});

Deno.test("layernorm backward at 768 columns (several rows per workgroup) and 4096 (one row, 4 vec4s per invocation), with more blocks than the second stage's lanes, with subgroups and without", async () => {
  for (const subgroups of [true, false]) {
    const gpu = await requestGpu({ subgroups });
    assert.equal(gpu.hasSubgroups, subgroups, `${gpu.name}: subgroups ${gpu.hasSubgroups}`);
    await checkBackwardShapes(gpu);
  }
});

async function checkBackwardShapes(gpu: Gpu) {
  const k = new Kernels(gpu);
  // 301 rows: not a multiple of the 4 rows a 768-column workgroup takes at once; in blocks of 1, stage 2
  // sums 301 blocks per column, past its 64 lanes x 4 loads. The default blocks take 8 rounds of 4 rows.
  for (const [rows, cols, rowsPerBlock] of [[301, 768, 1], [301, 768, undefined], [3, 4096, undefined]]) {
    const c = backwardCase(rows!, cols!);
    const residual = seededUniform(rows! * cols!, 12);
    const dx = storageBuffer(gpu, "dx", rows! * cols! * 4);
    const dweight = uploadBuffer(gpu, "dweight", c.initialGrads.slice(0, cols));
    const dbias = uploadBuffer(gpu, "dbias", c.initialGrads.slice(cols));
    const step = await layerNormBackward(k, {
      dy: uploadBuffer(gpu, "dy", c.dy),
      x: uploadBuffer(gpu, "x", c.x),
      weight: uploadBuffer(gpu, "weight", c.weight),
      mean: uploadBuffer(gpu, "mean", c.mean),
      rstd: uploadBuffer(gpu, "rstd", c.rstd),
      dx,
      residual: uploadBuffer(gpu, "residual", residual),
      dweight,
      dbias,
      rows: rows!,
      cols: cols!,
      rowsPerBlock,
    });
    submitDispatches(gpu, step);
    const expected = ref.layerNormBackward(c.dy, c.x, c.weight, c.mean, c.rstd, { rows: rows!, cols: cols! });
    const what = `${rows}x${cols} in blocks of ${rowsPerBlock ?? "default"}`;
    const withResidual = expected.dx.map((v, i) => v + residual[i]);
    // dx as in the tests above (measured 4e-7). dweight and dbias sum 301 rows of O(1) terms into values
    // up to ~30: their rounding stays within RTOL of that (measured 1e-5 absolute).
    const tol = { atol: ATOL, rtol: RTOL };
    assertClose(await readF32(gpu, dx), withResidual, { ...tol, what: `${what} dx` });
    const plus = (d: Float64Array, start: number) => d.map((v, i) => c.initialGrads[start + i] + v);
    assertClose(await readF32(gpu, dweight), plus(expected.dweight, 0), { ...tol, what: `${what} dweight` });
    assertClose(await readF32(gpu, dbias), plus(expected.dbias, cols!), { ...tol, what: `${what} dbias` });
  }
}

Deno.test("layernorm backward reads dy as f16, matching the reference on the f16-rounded dy", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  for (const [rows, cols] of [[37, 300], [301, 768]]) {
    const c = backwardCase(rows, cols);
    const dyHost = Float16Array.from(c.dy);
    const residual = seededUniform(rows * cols, 12);
    const dx = storageBuffer(gpu, "dx", rows * cols * 4);
    const dweight = uploadBuffer(gpu, "dweight", c.initialGrads.slice(0, cols));
    const dbias = uploadBuffer(gpu, "dbias", c.initialGrads.slice(cols));
    const step = await layerNormBackward(k, {
      dy: uploadBuffer(gpu, "dy", dyHost),
      x: uploadBuffer(gpu, "x", c.x),
      weight: uploadBuffer(gpu, "weight", c.weight),
      mean: uploadBuffer(gpu, "mean", c.mean),
      rstd: uploadBuffer(gpu, "rstd", c.rstd),
      dx,
      residual: uploadBuffer(gpu, "residual", residual),
      dweight,
      dbias,
      rows,
      cols,
    });
    submitDispatches(gpu, step);
    const expected = ref.layerNormBackward(dyHost, c.x, c.weight, c.mean, c.rstd, { rows, cols });
    // The reference reads the same f16-rounded dy and every output is f32: the f32 tolerances hold.
    const tol = { atol: ATOL, rtol: RTOL };
    const what = `${rows}x${cols}`;
    const withResidual = expected.dx.map((v, i) => v + residual[i]);
    assertClose(await readF32(gpu, dx), withResidual, { ...tol, what: `${what} dx` });
    const plus = (d: Float64Array, start: number) => d.map((v, i) => c.initialGrads[start + i] + v);
    assertClose(await readF32(gpu, dweight), plus(expected.dweight, 0), { ...tol, what: `${what} dweight` });
    assertClose(await readF32(gpu, dbias), plus(expected.dbias, cols), { ...tol, what: `${what} dbias` });
  }
});

Deno.test("layernorm backward is deterministic: two runs agree bit for bit", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const rows = 70;
  const cols = 132;
  const c = backwardCase(rows, cols);
  const inputs = {
    dy: uploadBuffer(gpu, "dy", c.dy),
    x: uploadBuffer(gpu, "x", c.x),
    weight: uploadBuffer(gpu, "weight", c.weight),
    mean: uploadBuffer(gpu, "mean", c.mean),
    rstd: uploadBuffer(gpu, "rstd", c.rstd),
  };
  const run = async () => {
    const dx = storageBuffer(gpu, "dx", rows * cols * 4);
    const dweight = storageBuffer(gpu, "dweight", cols * 4);
    const dbias = storageBuffer(gpu, "dbias", cols * 4);
    const plan = await layerNormBackward(k, { ...inputs, dx, dweight, dbias, rows, cols, rowsPerBlock: 4 });
    submitDispatches(gpu, plan);
    return [await readF32(gpu, dx), await readF32(gpu, dweight), await readF32(gpu, dbias)];
  };
  const [first, second] = [await run(), await run()];
  for (let i = 0; i < first.length; i++) assert.deepEqual(second[i], first[i]);
});

Deno.test("layernorm wrappers name a bad shape or a short buffer", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const b = storageBuffer(gpu, "b", 64 * 4);
  const forward = { x: b, weight: b, bias: b, y: b, mean: b, rstd: b, rows: 2, cols: 32, eps: 1e-12 };
  await assert.rejects(
    () => layerNormForward(k, { ...forward, cols: 30 }),
    /layerNormForward: cols = 30, expected a positive multiple of 4/,
  );
  await assert.rejects(
    () => layerNormForward(k, { ...forward, rows: 4 }),
    /layerNormForward x: buffer b has 256 bytes, needs 512/,
  );
  // An f16 buffer needs 2 bytes an element: 60 of them are short of 2 x 32 (forward) or 1 x 64 (backward).
  const half = storageBuffer(gpu, "half", 60 * 2, "f16");
  await assert.rejects(
    () => layerNormForward(k, { ...forward, y: half }),
    /layerNormForward y: buffer half has 120 bytes, needs 128/,
  );
  const backward = {
    dy: b,
    x: b,
    weight: b,
    mean: b,
    rstd: b,
    dx: b,
    dweight: b,
    dbias: b,
    rows: 1,
    cols: 64,
  };
  const wide = gpu.limits.maxComputeWorkgroupStorageSize; // an accumulator pair per column cannot fit
  await assert.rejects(
    () => layerNormBackward(k, { ...backward, cols: wide }),
    new RegExp(`layerNormBackward: cols = ${wide} needs \\d+ bytes of workgroup memory`),
  );
  await assert.rejects(
    () => layerNormBackward(k, { ...backward, cols: 4100 }),
    /layerNormBackward: cols = 4100, at most 4096 fit in registers/,
  );
  await assert.rejects(
    () => layerNormBackward(k, { ...backward, dbias: { buffer: b, offset: 0, size: 60 * 4 } }),
    /layerNormBackward dbias: buffer b has 240 bytes, needs 256/,
  );
  await assert.rejects(
    () => layerNormBackward(k, { ...backward, dy: half }),
    /layerNormBackward dy: buffer half has 120 bytes, needs 128/,
  );
  await assert.rejects(
    () => layerNormBackward(k, { ...backward, residual: { buffer: b, offset: 0, size: 64 * 4 } }),
    /layerNormBackward: residual and dx: expected two different buffers, got b twice/,
  );
});
