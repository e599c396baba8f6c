import assert from "node:assert/strict";
import { storageBuffer } from "../../src/gpu/buffers.ts";
import { requestGpu } from "../../src/gpu/device.ts";
import {
  LOSS_SCALE_BYTES,
  lossScaleBuffer,
  readLossScale,
  writeLossScale,
} from "../../src/model/loss_scale.ts";

const gpu = await requestGpu();

Deno.test("the loss-scale buffer holds a positive f32 scale and a u32 count", async () => {
  const b = lossScaleBuffer(gpu, 65536, 7);
  assert.equal(b.size, LOSS_SCALE_BYTES);
  assert.deepEqual(await readLossScale(gpu, b), { scale: 65536, goodSteps: 7 });
  for (const scale of [0, -1, NaN, Infinity, 1e39, 1e-50]) {
    assert.throws(
      () => writeLossScale(gpu, b, scale),
      /writeLossScale: scale = .*, expected a positive number/,
    );
  }
  assert.throws(() => writeLossScale(gpu, b, 1, -1), /writeLossScale: goodSteps = -1, expected a u32/);
  assert.throws(
    () => writeLossScale(gpu, storageBuffer(gpu, "small", 8), 1),
    /writeLossScale buffer: buffer small has 8 bytes, needs 16/,
  );
});
