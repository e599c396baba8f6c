import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { readF32, writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { zipfBatch } from "../../src/bench/batches.ts";
import { maxLabels } from "../../src/train/masking.ts";
import { planTrainer } from "../../src/train/step.ts";

const microBatch = 2;
const seq = tiny.maxSeqLen;

/** The parameters and stats after `steps` steps of two micro-batches each, paced or not. */
async function train(paced: boolean, steps: number) {
  const k = new Kernels(await requestGpu());
  const trainer = await planTrainer(
    k,
    tiny,
    { batch: microBatch, seq, maxLabels: maxLabels(microBatch, seq, 0.15) },
    { paced },
  );
  writeBuffer(k.gpu, trainer.model.params, initParams(tiny, { seed: 4 }) as Float32Array<ArrayBuffer>);
  const batches = [0, 1, 2, 3].map((i) => zipfBatch(tiny, microBatch, 20 + i));
  for (let i = 0; i < steps; i++) await trainer.step(batches.slice((i % 2) * 2, (i % 2) * 2 + 2), 1e-3);
  const stats = await trainer.readStats();
  const params = await readF32(k.gpu, trainer.model.params);
  trainer.model.destroy();
  return { stats, params };
}

Deno.test("a paced trainer (sleep, then a marker map: Dawn's way) computes what the unpaced one does", async () => {
  const steps = 6; // more than the two in flight, so the paced waits run and time themselves
  const unpaced = await train(false, steps);
  const paced = await train(true, steps);
  assert.ok(Number.isFinite(unpaced.stats.loss) && unpaced.stats.labels > 0);
  assert.deepEqual(paced.stats, unpaced.stats);
  assert.deepEqual(paced.params, unpaced.params);
});
