import assert from "node:assert/strict";
import { learningRate, microBatchesInSteps, microBatchesPerStep } from "../../src/train/schedule.ts";

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} != ${b}`);

Deno.test("the default triangle is the Cramming authors' budget-triangle2", () => {
  const schedule = { peak: 1e-3, start: 0.25, peakAt: 0.75 };
  for (let f = 0; f <= 1; f += 0.01) {
    close(learningRate(schedule, f), 1e-3 * Math.min(0.25 + f, 4 * (1 - f)), `f=${f}`);
  }
  close(learningRate(schedule, 0), 2.5e-4, "start");
  close(learningRate(schedule, 0.75), 1e-3, "peak");
  close(learningRate(schedule, 1), 0, "end");
});

Deno.test("the symmetric one-cycle rises from zero and falls to zero", () => {
  const schedule = { peak: 2, start: 0, peakAt: 0.5 };
  close(learningRate(schedule, 0), 0, "start");
  close(learningRate(schedule, 0.25), 1, "quarter");
  close(learningRate(schedule, 0.5), 2, "peak");
  close(learningRate(schedule, 0.75), 1, "three quarters");
  close(learningRate(schedule, 1), 0, "end");
  // Outside [0, 1] the fraction is clamped.
  close(learningRate(schedule, -1), 0, "before");
  close(learningRate(schedule, 1.5), 0, "after");
  // peakAt 0: decay only.
  close(learningRate({ peak: 1, start: 0, peakAt: 0 }, 0), 1, "decay-only start");
  close(learningRate({ peak: 1, start: 0, peakAt: 0 }, 0.5), 0.5, "decay-only middle");
});

Deno.test("the batch ramp grows from one micro-batch to the target, then holds", () => {
  const ramp = { target: 32, ramp: 0.6 };
  assert.equal(microBatchesPerStep(ramp, 0), 1);
  assert.equal(microBatchesPerStep(ramp, 0.3), 16); // 1 + floor(31 * 0.5)
  assert.equal(microBatchesPerStep(ramp, 0.6), 32);
  assert.equal(microBatchesPerStep(ramp, 0.9), 32);
  let previous = 0;
  for (let f = 0; f <= 1; f += 0.001) {
    const n = microBatchesPerStep(ramp, f);
    assert.ok(n >= previous && n >= 1 && n <= 32, `f=${f}: ${n}`);
    previous = n;
  }
  assert.equal(microBatchesPerStep({ target: 8, ramp: 0 }, 0), 8, "no ramp");
  assert.equal(microBatchesPerStep({ target: 1, ramp: 0.6 }, 0.1), 1, "target of one");
});

Deno.test("a budget of steps reads the micro-batches of every step, the ramp's smaller ones first", () => {
  // Steps start at fractions 0, 1/8, ..., 7/8: 1, 1, 2 and 3 micro-batches on the ramp, then 4 each.
  assert.equal(microBatchesInSteps({ target: 4, ramp: 0.5 }, 8), 1 + 1 + 2 + 3 + 4 * 4);
  assert.equal(microBatchesInSteps({ target: 4, ramp: 0 }, 8), 32);
  assert.equal(microBatchesInSteps({ target: 4, ramp: 0.5 }, 0), 0);
});
