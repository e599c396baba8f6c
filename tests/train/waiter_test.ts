import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { storageBuffer } from "../../src/gpu/buffers.ts";
import { doneWaiter, pacedWaiter, type StepWaiter } from "../../src/train/waiter.ts";

const gpu = await requestGpu();
const source = storageBuffer(gpu, "marker source", 16);

/** Queues `steps` steps of empty passes, one pass each or a first and a last, then settles. */
async function run(wait: StepWaiter, steps: number, passes: "one" | "two") {
  for (let i = 0; i < steps; i++) {
    await wait.beforeSubmit();
    const encoder = gpu.device.createCommandEncoder();
    if (passes === "one") {
      encoder.beginComputePass(wait.onlyPass()).end();
    } else {
      encoder.beginComputePass(wait.firstPass()).end();
      encoder.beginComputePass(wait.lastPass()).end();
    }
    wait.submitLast(encoder);
  }
  await wait.settle();
}

Deno.test("a paced waiter sees more steps than its depth through, and times them where timestamps exist", async () => {
  for (const passes of ["one", "two"] as const) {
    const wait = pacedWaiter(gpu, source, 2);
    await run(wait, 5, passes);
    const ms = wait.gpuStepMs();
    if (gpu.hasTimestamps) assert.ok(ms !== undefined && ms >= 0, `${passes} pass(es): GPU time ${ms}`);
    else assert.equal(ms, undefined);
    // Its passes ask for both timestamps of a step's slot, or none without timestamps.
    const only = wait.onlyPass()?.timestampWrites;
    assert.equal(only === undefined, !gpu.hasTimestamps);
    if (only) assert.equal(only.endOfPassWriteIndex, only.beginningOfPassWriteIndex! + 1);
  }
});

Deno.test("a done waiter asks for no timestamps and settles at once", async () => {
  const wait = doneWaiter(gpu);
  await run(wait, 4, "one");
  assert.equal(wait.onlyPass(), undefined);
  assert.equal(wait.gpuStepMs(), undefined);
});

Deno.test("a paced waiter needs a depth of at least one step", () => {
  assert.throws(() => pacedWaiter(gpu, source, 0), /depth 0/);
  assert.throws(() => pacedWaiter(gpu, source, 1.5), /depth 1.5/);
});
