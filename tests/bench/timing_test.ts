import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readBuffer, storageBuffer } from "../../src/gpu/buffers.ts";
import { encodeDispatches, Kernels } from "../../src/gpu/kernels.ts";
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

// Under CRAM_GPU=dawn this checks that Dawn's timestamp_quantization is off (it fails with it on).
Deno.test("GPU timestamps are not rounded to 65,536 ns", async () => {
  const gpu = await requestGpu({ timestamps: true });
  if (!gpu.hasTimestamps) return; // this adapter has no GPU clock to check
  const k = new Kernels(gpu);
  const buffer = storageBuffer(gpu, "timed", 1 << 12);
  const dispatches = await zeroBuffer(k, { buffer, length: 1 << 10 });
  const stamps: bigint[] = [];
  for (let i = 0; i < 4; i++) {
    const querySet = gpu.device.createQuerySet({ type: "timestamp", count: 2 });
    const resolved = gpu.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const encoder = gpu.device.createCommandEncoder();
    encodeDispatches(encoder, dispatches, {
      timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
    encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
    gpu.device.queue.submit([encoder.finish()]);
    stamps.push(...new BigUint64Array(await readBuffer(gpu, resolved)));
    querySet.destroy();
    resolved.destroy();
  }
  // Eight readings of a clock with a finer tick are all multiples of 2^16 with probability 2^-128.
  assert.ok(stamps.some((t) => t % 65536n !== 0n), `timestamps ${stamps.join(", ")}`);
  buffer.destroy();
});
