import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { storageBuffer } from "../../src/gpu/buffers.ts";
import { doneWaiter, pacedWaiter, type StepWaiter } from "../../src/train/waiter.ts";

const gpu = await requestGpu();
const source = storageBuffer(gpu, "marker source", 16);

/**
 * Queues `steps` steps of empty passes, one pass each or a first and a last, then settles; returns the
 * timestamp indices each step's passes asked for (begin, end), undefined without timestamps.
 */
async function run(wait: StepWaiter, steps: number, passes: "one" | "two") {
  const indices: [number | undefined, number | undefined][] = [];
  for (let i = 0; i < steps; i++) {
    await wait.beforeSubmit();
    const encoder = gpu.device.createCommandEncoder();
    if (passes === "one") {
      const only = wait.onlyPass();
      indices.push([
        only?.timestampWrites?.beginningOfPassWriteIndex,
        only?.timestampWrites?.endOfPassWriteIndex,
      ]);
      encoder.beginComputePass(only).end();
    } else {
      const first = wait.firstPass();
      const last = wait.lastPass();
      indices.push([
        first?.timestampWrites?.beginningOfPassWriteIndex,
        last?.timestampWrites?.endOfPassWriteIndex,
      ]);
      encoder.beginComputePass(first).end();
      encoder.beginComputePass(last).end();
    }
    wait.submitLast(encoder);
  }
  await wait.settle();
  return indices;
}

Deno.test("a paced waiter sees more steps than its depth through, and times them where timestamps exist", async () => {
  const depth = 2;
  for (const passes of ["one", "two"] as const) {
    const wait = pacedWaiter(gpu, source, depth);
    const indices = await run(wait, 5, passes);
    const ms = wait.gpuStepMs();
    if (gpu.hasTimestamps) {
      assert.ok(ms !== undefined && ms >= 0, `${passes} pass(es): GPU time ${ms}`);
      // Step i writes the two timestamps of its slot, i % depth, which submitLast resolves into its marker.
      assert.deepEqual(indices, [0, 1, 2, 3, 4].map((i) => [2 * (i % depth), 2 * (i % depth) + 1]));
    } else {
      assert.equal(ms, undefined);
      assert.deepEqual(indices, Array(5).fill([undefined, undefined]));
    }
  }
});

Deno.test("a done waiter asks for no timestamps and measures no GPU time", async () => {
  const wait = doneWaiter(gpu);
  assert.deepEqual(await run(wait, 4, "one"), Array(4).fill([undefined, undefined]));
  assert.equal(wait.gpuStepMs(), undefined);
});

Deno.test("a paced waiter needs a depth of at least one step", () => {
  assert.throws(() => pacedWaiter(gpu, source, 0), /depth 0/);
  assert.throws(() => pacedWaiter(gpu, source, 1.5), /depth 1.5/);
});
