import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { storageBuffer } from "../../src/gpu/buffers.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { zeroBuffer } from "../../src/train/optimizer.ts";
import { timeDispatches } from "../../src/bench/timing.ts";

for (const timestamps of [true, false]) {
  Deno.test(`timeDispatches times repeats of a dispatch list (${timestamps ? "GPU" : "wall"} clock)`, async () => {
    const gpu = await requestGpu({ timestamps });
    const k = new Kernels(gpu);
    const buffer = storageBuffer(gpu, "timed", 1 << 16);
    const dispatches = await zeroBuffer(k, { buffer, length: 1 << 14 });
    const timing = await timeDispatches(gpu, dispatches, { warmupSeconds: 0.01, timedSeconds: 0.01 });
    assert.equal(timing.clock, timestamps ? "gpu" : "wall");
    assert.ok(Number.isInteger(timing.repeats) && timing.repeats >= 1, `${timing.repeats} repeats`);
    assert.ok(timing.seconds > 0 && timing.seconds < 0.5, `${timing.seconds} s per repeat`);
    buffer.destroy();
  });
}
