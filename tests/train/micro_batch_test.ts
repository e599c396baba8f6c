import assert from "node:assert/strict";
import { GpuError } from "../../src/gpu/device.ts";
import {
  CPU_MICRO_BATCH,
  defaultMicroBatch,
  GPU_MICRO_BATCH,
  planFittingMicroBatch,
} from "../../src/train/micro_batch.ts";

Deno.test("the default micro-batch is by adapter and never more than the batch", () => {
  assert.equal(defaultMicroBatch({ isCpu: false }, 512), GPU_MICRO_BATCH);
  assert.equal(defaultMicroBatch({ isCpu: true }, 32), CPU_MICRO_BATCH);
  assert.equal(defaultMicroBatch({ isCpu: false }, 32), 32);
});

/** A planner that runs out of GPU memory above `fits` sequences, recording what it was asked. */
function planner(fits: number) {
  const tried: number[] = [];
  const plan = (microBatch: number) => {
    tried.push(microBatch);
    return microBatch > fits
      ? Promise.reject(new GpuError(`allocating buffer x: out of GPU memory`))
      : Promise.resolve(`trainer of ${microBatch}`);
  };
  return { plan, tried };
}

Deno.test("a default micro-batch is halved until the trainer fits", async () => {
  const { plan, tried } = planner(40);
  const halvings: string[] = [];
  const fitted = await planFittingMicroBatch(plan, {
    microBatch: 128,
    halve: true,
    onHalve: (from, to) => halvings.push(`${from}->${to}`),
  });
  assert.deepEqual(fitted, { planned: "trainer of 32", microBatch: 32 });
  assert.deepEqual(tried, [128, 64, 32]);
  assert.deepEqual(halvings, ["128->64", "64->32"]);
});

Deno.test("a micro-batch the user gave, an odd one, and other errors than memory are thrown", async () => {
  await assert.rejects(
    planFittingMicroBatch(planner(40).plan, { microBatch: 128, halve: false }),
    /out of GPU memory/,
  );
  const odd = planner(2);
  await assert.rejects(planFittingMicroBatch(odd.plan, { microBatch: 12, halve: true }), /out of GPU memory/);
  assert.deepEqual(odd.tried, [12, 6, 3]);
  const broken = () => Promise.reject(new Error("shader failed to compile"));
  await assert.rejects(
    planFittingMicroBatch(broken, { microBatch: 128, halve: true }),
    /shader failed to compile/,
  );
});
