import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import type { Gpu } from "../../src/gpu/device.ts";
import { readF32, storageBuffer, uploadBuffer, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels, submitDispatches, writeUniforms } from "../../src/gpu/kernels.ts";
import type { ParamLayout } from "../../src/model/params.ts";
import {
  adamw,
  adamwStepBuffer,
  adamwStepUniforms,
  decayFlags,
  gradNorm,
  type GradNormOptions,
  OPTIMIZER_STATS_BYTES,
  readOptimizerStats,
  zeroBuffer,
} from "../../src/train/optimizer.ts";
import { lossScaleBuffer, readLossScale } from "../../src/model/loss_scale.ts";
import { adamwStep, clipFactor, globalNorm, updateLossScale } from "../../src/reference/optimizer.ts";
import { assertClose, seededUniform } from "../_helpers.ts";

// Tolerances. Each squared gradient passes through at most ~16 f32 roundings on its way into the norm's
// sum (a dot of 4, a short per-invocation running sum, an 8-level tree): 16 * 6e-8 ~ 1e-6 relative on the
// sum in the worst case, half that on its square root: rtol 1e-6. AdamW rounds each O(1) parameter to
// ~6e-8 per step and computes the lr-sized update (lr = 0.01) to ~1e-6 relative (pow in the bias
// corrections, the clip factor): atol 1e-6 on the parameters after 3 steps. The moments take 2 roundings
// a step of terms that carry the clip factor's error: rtol 4e-7 (v: 1e-6, as v carries the clip factor
// squared); m's terms (1 - beta1) g can cancel, leaving an absolute error of a few ulps of 0.1: atol 2e-8.
// llvmpipe measures a third or less of each.
const NORM_RTOL = 1e-6;
const PARAM_ATOL = 1e-6;
const M_TOL = { rtol: 4e-7, atol: 2e-8 };
const V_RTOL = 1e-6;

/** Three tensors with padding between them, the middle one without weight decay (a LayerNorm weight). */
const layout: ParamLayout = {
  tensors: [
    { name: "a.weight", shape: [10, 10], kind: "matrix", offset: 0, size: 100, decay: true },
    { name: "a.norm.weight", shape: [37], kind: "norm-weight", offset: 128, size: 37, decay: false },
    { name: "b.weight", shape: [8, 8], kind: "matrix", offset: 192, size: 64, decay: true },
  ],
  totalSize: 256,
};

/** Values for the tensors of `layout` and zeros in its padding, as the engine keeps them. */
function layoutValues(seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  const values = new Float32Array(layout.totalSize);
  for (const t of layout.tensors) values.set(seededUniform(t.size, seed + t.offset, lo, hi), t.offset);
  return values;
}

interface Optimizer {
  params: GPUBuffer;
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  stats: GPUBuffer;
  run(grads: Float32Array<ArrayBuffer>, lr: number, step: number): void;
}

const HYPER = { beta1: 0.9, beta2: 0.98, eps: 1e-12, weightDecay: 0.01 };

/**
 * The GPU optimizer over `layout` with its step planned once; `run` submits one step. `scaling` passes a
 * loss-scale buffer (and dynamic scaling) to gradNorm.
 */
async function gpuOptimizer(
  gpu: Gpu,
  params: Float32Array<ArrayBuffer>,
  maxNorm: number,
  scaling: Pick<GradNormOptions, "lossScale" | "dynamicLossScale"> = {},
): Promise<Optimizer> {
  const k = new Kernels(gpu);
  const length = layout.totalSize;
  const o = {
    params: uploadBuffer(gpu, "params", params),
    grads: storageBuffer(gpu, "grads", length * 4),
    m: storageBuffer(gpu, "m", length * 4),
    v: storageBuffer(gpu, "v", length * 4),
    stats: storageBuffer(gpu, "stats", OPTIMIZER_STATS_BYTES),
  };
  const stepUniforms = adamwStepBuffer(k);
  const plan = [
    ...await gradNorm(k, { grads: o.grads, length, stats: o.stats, maxNorm, ...scaling }),
    ...await adamw(k, {
      ...o,
      ...HYPER,
      length,
      decay: uploadBuffer(gpu, "decay", decayFlags(layout)),
      step: stepUniforms,
    }),
  ];
  return {
    ...o,
    run(grads, lr, step) {
      writeBuffer(gpu, o.grads, grads);
      writeUniforms(gpu, stepUniforms, adamwStepUniforms({ lr, step }));
      submitDispatches(gpu, plan);
    },
  };
}

Deno.test("decayFlags marks the 64-element chunks of decayed tensors", () => {
  assert.deepEqual(Array.from(decayFlags(layout)), [1, 1, 0, 1]);
  const shifted = { ...layout, tensors: [{ ...layout.tensors[0], offset: 32 }] };
  assert.throws(() => decayFlags(shifted), /parameter a\.weight: offset 32 is not a multiple of 64/);
});

Deno.test("the gradient norm matches the reference on lengths that are not multiples of the workgroup, with subgroups and without", async () => {
  // 333 vec4s in one first-stage workgroup of 256 (each invocation loops), and 1000 in the default 4.
  const cases: [number, number | undefined, boolean][] = [[4 * 333, 1, true], [4 * 1000, undefined, true]];
  cases.push(
    ...cases.map(([length, partials]) => [length, partials, false] as [number, number | undefined, boolean]),
  );
  for (const [length, partials, subgroups] of cases) {
    const gpu = await requestGpu({ subgroups });
    assert.equal(gpu.hasSubgroups, subgroups);
    const k = new Kernels(gpu);
    const host = seededUniform(length, length);
    const stats = storageBuffer(gpu, "stats", OPTIMIZER_STATS_BYTES);
    const grads = uploadBuffer(gpu, "grads", host);
    submitDispatches(gpu, await gradNorm(k, { grads, length, stats, maxNorm: 1, partials }));
    const s = await readOptimizerStats(gpu, stats);
    const norm = globalNorm([host]);
    assertClose([s.norm], [norm], { rtol: NORM_RTOL, what: `norm of ${length}` });
    assertClose([s.clipFactor], [clipFactor(norm, 1)], { rtol: NORM_RTOL, what: `clip factor of ${length}` });
    assert.equal(s.skipped, false);
    assert.equal(s.skippedSteps, 0);
    assert.equal(s.lossScale, 1);
  }
});

// Without a loss scale, and with gradients that carry one: a power of two (as dynamic scaling keeps) and
// another, which rounds.
const ADAMW_CASES = [
  [0.5, "active", undefined],
  [100, "inactive", undefined],
  [0.5, "active", 1024],
  [100, "inactive", 3000],
] as const;

for (const [maxNorm, clipping, scale] of ADAMW_CASES) {
  const scaled = scale === undefined ? "" : `, gradients scaled by ${scale}`;
  Deno.test(`3 AdamW steps match the reference, with and without weight decay, clipping ${clipping}${scaled}`, async () => {
    const gpu = await requestGpu();
    const initial = layoutValues(1);
    const lossScale = scale === undefined ? undefined : lossScaleBuffer(gpu, scale);
    const o = await gpuOptimizer(gpu, initial, maxNorm, { lossScale });
    const params = Float64Array.from(initial);
    const m = new Float64Array(layout.totalSize);
    const v = new Float64Array(layout.totalSize);
    const lrs = [0.01, 0.008, 0.006];
    for (let step = 1; step <= 3; step++) {
      const grads = layoutValues(10 * step);
      const lr = lrs[step - 1];
      // The backward leaves the gradients times the loss scale; the reference sees them unscaled.
      o.run(grads.map((g) => g * (scale ?? 1)), lr, step);
      const norm = globalNorm([grads]);
      const clip = clipFactor(norm, maxNorm);
      assert.equal(clip < 1, clipping === "active");
      for (const t of layout.tensors) {
        const range = [t.offset, t.offset + t.size] as const;
        adamwStep(
          params.subarray(...range),
          grads.subarray(...range).map((g) => g * clip),
          m.subarray(...range),
          v.subarray(...range),
          { ...HYPER, lr, step, weightDecay: t.decay ? HYPER.weightDecay : 0 },
        );
      }
      const s = await readOptimizerStats(gpu, o.stats);
      assertClose([s.norm, s.clipFactor], [norm, clip], { rtol: NORM_RTOL, what: `step ${step} norm, clip` });
      assert.equal(s.lossScale, scale ?? 1);
    }
    assertClose(await readF32(gpu, o.params), params, { atol: PARAM_ATOL, what: "params" });
    assertClose(await readF32(gpu, o.m), m, { ...M_TOL, what: "m" });
    assertClose(await readF32(gpu, o.v), v, { rtol: V_RTOL, what: "v" });
    // A static scale stays as it was.
    if (lossScale) assert.deepEqual(await readLossScale(gpu, lossScale), { scale, goodSteps: 0 });
  });
}

Deno.test("a non-finite gradient norm skips the update, is counted, and the next finite step applies", async () => {
  const gpu = await requestGpu();
  const o = await gpuOptimizer(gpu, layoutValues(1), 1);
  o.run(layoutValues(2), 0.01, 1);
  const before = await Promise.all([o.params, o.m, o.v].map((b) => readF32(gpu, b)));
  for (const [step, bad] of [[2, NaN], [3, Infinity]]) {
    const grads = layoutValues(3);
    grads[130] = bad;
    o.run(grads, 0.01, step);
    const s = await readOptimizerStats(gpu, o.stats);
    assert.equal(s.skipped, true, `step with a ${bad} gradient`);
    assert.equal(s.skippedSteps, step - 1);
    assert.equal(s.clipFactor, 0);
    const after = await Promise.all([o.params, o.m, o.v].map((b) => readF32(gpu, b)));
    assert.deepEqual(after, before, `params and moments unchanged by the ${bad} step`);
  }
  o.run(layoutValues(4), 0.01, 4);
  const s = await readOptimizerStats(gpu, o.stats);
  assert.equal(s.skipped, false);
  assert.equal(s.skippedSteps, 2);
  assert.notDeepEqual(await readF32(gpu, o.params), before[0]);
});

Deno.test("dynamic loss scaling halves the scale on a non-finite step and doubles it after growthInterval", async () => {
  const gpu = await requestGpu();
  const growthInterval = 2;
  const lossScale = lossScaleBuffer(gpu, 65536);
  const o = await gpuOptimizer(gpu, layoutValues(1), 100, {
    lossScale,
    dynamicLossScale: { growthInterval },
  });
  const params = Float64Array.from(layoutValues(1));
  const m = new Float64Array(layout.totalSize);
  const v = new Float64Array(layout.totalSize);
  let state = { scale: 65536, goodSteps: 0 };
  let skipped = 0;
  // Good, inf (halves), good, good (doubles back), NaN (halves), good, good, good (doubles, then counts 1).
  const bad = [undefined, Infinity, undefined, undefined, NaN, undefined, undefined, undefined];
  for (let step = 1; step <= bad.length; step++) {
    const grads = layoutValues(10 * step);
    const scaledGrads = grads.map((g) => g * state.scale);
    const finite = bad[step - 1] === undefined;
    if (!finite) scaledGrads[130] = bad[step - 1]!;
    const before = await readF32(gpu, o.params);
    o.run(scaledGrads, 0.01, step);
    if (finite) {
      // maxNorm 100 leaves these gradients unclipped.
      for (const t of layout.tensors) {
        const range = [t.offset, t.offset + t.size] as const;
        const options = { ...HYPER, lr: 0.01, step, weightDecay: t.decay ? HYPER.weightDecay : 0 };
        adamwStep(
          params.subarray(...range),
          grads.subarray(...range),
          m.subarray(...range),
          v.subarray(...range),
          options,
        );
      }
    } else skipped++;
    state = updateLossScale(state, finite, growthInterval);
    const s = await readOptimizerStats(gpu, o.stats);
    assert.equal(s.skipped, !finite, `step ${step} skipped`);
    assert.equal(s.skippedSteps, skipped);
    assert.equal(s.lossScale, state.scale, `step ${step} loss scale`);
    assert.deepEqual(await readLossScale(gpu, lossScale), state, `step ${step} loss-scale buffer`);
    if (finite) assertClose([s.norm], [globalNorm([grads])], { rtol: NORM_RTOL, what: `step ${step} norm` });
    else assert.deepEqual(await readF32(gpu, o.params), before, `step ${step} params`);
  }
  assert.deepEqual(state, { scale: 65536, goodSteps: 1 });
  assertClose(await readF32(gpu, o.params), params, { atol: PARAM_ATOL, what: "params" });
});

Deno.test("dynamic loss scaling does not grow the scale past f32's range", async () => {
  const gpu = await requestGpu();
  const lossScale = lossScaleBuffer(gpu, 2 ** 127);
  const o = await gpuOptimizer(gpu, layoutValues(1), 1, {
    lossScale,
    dynamicLossScale: { growthInterval: 1 },
  });
  o.run(new Float32Array(layout.totalSize), 0.01, 1);
  assert.deepEqual(await readLossScale(gpu, lossScale), { scale: 2 ** 127, goodSteps: 0 });
  assert.equal((await readOptimizerStats(gpu, o.stats)).skipped, false);
});

Deno.test("zeroBuffer zeroes exactly `length` elements", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const length = 4 * 301; // 301 vec4s: not a multiple of the 256-wide workgroup
  const host = seededUniform(length + 8, 1);
  const buffer = uploadBuffer(gpu, "buffer", host);
  submitDispatches(gpu, await zeroBuffer(k, { buffer, length }));
  assert.deepEqual(await readF32(gpu, buffer), host.map((x, i) => i < length ? 0 : x));
});

Deno.test("optimizer wrappers name a bad option", async () => {
  const gpu = await requestGpu();
  const k = new Kernels(gpu);
  const b = storageBuffer(gpu, "b", 64 * 4);
  await assert.rejects(
    () => gradNorm(k, { grads: b, length: 64, stats: b, maxNorm: 0 }),
    /gradNorm: maxNorm = 0, expected a positive finite number/,
  );
  const norm = {
    grads: b,
    length: 64,
    stats: storageBuffer(gpu, "stats", OPTIMIZER_STATS_BYTES),
    maxNorm: 1,
  };
  await assert.rejects(
    () => gradNorm(k, { ...norm, dynamicLossScale: { growthInterval: 2000 } }),
    /gradNorm: dynamicLossScale needs a lossScale buffer/,
  );
  await assert.rejects(
    () => gradNorm(k, { ...norm, lossScale: b, dynamicLossScale: { growthInterval: 0 } }),
    /gradNorm: growthInterval = 0, expected a positive integer/,
  );
  await assert.rejects(
    () => gradNorm(k, { ...norm, lossScale: storageBuffer(gpu, "small", 8) }),
    /gradNorm lossScale: buffer small has 8 bytes, needs 16/,
  );
  await assert.rejects(
    () => gradNorm(k, { ...norm, lossScale: norm.stats }),
    /gradNorm stats and lossScale: expected two different buffers, got stats twice/,
  );
  await assert.rejects(() => zeroBuffer(k, { buffer: b, length: 6 }), /zeroBuffer: length = 6/);
  await assert.rejects(() => zeroBuffer(k, { buffer: b, length: 128 }), /zeroBuffer buffer: buffer b/);
  assert.throws(() => adamwStepUniforms({ lr: 1e-3, step: 0 }), /AdamW step = 0, expected an integer >= 1/);
});
