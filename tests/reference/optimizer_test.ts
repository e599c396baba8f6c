import assert from "node:assert/strict";
import { adamwStep, clipFactor, globalNorm, updateLossScale } from "../../src/reference/optimizer.ts";

Deno.test("globalNorm is the L2 norm over all tensors; clipFactor follows clip_grad_norm_", () => {
  assert.equal(globalNorm([new Float64Array([3]), new Float64Array([0, 4])]), 5);
  assert.equal(clipFactor(5, 0.5), 0.5 / (5 + 1e-6));
  assert.equal(clipFactor(0.1, 0.5), 1);
});

Deno.test("adamwStep matches a hand-computed two-step example", () => {
  const options = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
  const param = new Float64Array([1, 2]);
  const m = new Float64Array(2);
  const v = new Float64Array(2);
  // Element 0 sees gradients 0.5 then -0.25; element 1 sees 0, so only the decay moves it.
  adamwStep(param, [0.5, 0], m, v, { ...options, step: 1 });
  // Step 1: p = 1 * (1 - 0.01) = 0.99; m = 0.05, v = 0.0025; mhat = 0.5, vhat = 0.25; p -= 0.1 * 0.5 / 0.5.
  const p1 = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8);
  assert.ok(Math.abs(m[0] - 0.05) < 1e-15 && Math.abs(v[0] - 0.0025) < 1e-15);
  assert.ok(Math.abs(param[0] - p1) < 1e-15, `${param[0]} vs ${p1}`);
  assert.equal(param[1], 2 * 0.99);

  adamwStep(param, [-0.25, 0], m, v, { ...options, step: 2 });
  // Step 2: m = 0.045 - 0.025 = 0.02, v = 0.002475 + 0.000625 = 0.0031;
  // mhat = 0.02 / (1 - 0.81), vhat = 0.0031 / (1 - 0.9801).
  const p2 = p1 * 0.99 - 0.1 * (0.02 / 0.19) / (Math.sqrt(0.0031 / 0.0199) + 1e-8);
  assert.ok(Math.abs(m[0] - 0.02) < 1e-15 && Math.abs(v[0] - 0.0031) < 1e-15);
  assert.ok(Math.abs(param[0] - p2) < 1e-15, `${param[0]} vs ${p2}`);
  assert.equal(param[1], 2 * 0.99 * 0.99);
});

Deno.test("adamwStep rejects a step below 1 and mismatched lengths", () => {
  const p = new Float64Array(2);
  const options = { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 };
  assert.throws(() =>
    adamwStep(p, [0, 0], new Float64Array(2), new Float64Array(2), { ...options, step: 0 })
  );
  assert.throws(
    () => adamwStep(p, [0], new Float64Array(2), new Float64Array(2), { ...options, step: 1 }),
    /lengths differ/,
  );
});

Deno.test("updateLossScale halves on a non-finite step and doubles after growthInterval good steps", () => {
  let state = { scale: 65536, goodSteps: 0 };
  state = updateLossScale(state, true, 3);
  assert.deepEqual(state, { scale: 65536, goodSteps: 1 });
  state = updateLossScale(state, false, 3);
  assert.deepEqual(state, { scale: 32768, goodSteps: 0 });
  for (const goodSteps of [1, 2]) {
    state = updateLossScale(state, true, 3);
    assert.deepEqual(state, { scale: 32768, goodSteps });
  }
  assert.deepEqual(updateLossScale(state, true, 3), { scale: 65536, goodSteps: 0 });
  // Doubling past f32's largest finite value keeps the scale, and still restarts the count.
  assert.deepEqual(updateLossScale({ scale: 2 ** 127, goodSteps: 0 }, true, 1), {
    scale: 2 ** 127,
    goodSteps: 0,
  });
});
