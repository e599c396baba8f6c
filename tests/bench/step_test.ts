import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { tiny } from "../../src/model/config.ts";
import { benchStep, planStepBench, runSteps } from "../../src/bench/step.ts";

Deno.test("planStepBench alternates two steps' micro-batches and runSteps trains on them", async () => {
  const k = new Kernels(await requestGpu());
  const bench = await planStepBench(k, tiny, { microBatch: 2, accumulate: 2 });
  assert.equal(bench.tokensPerStep, 2 * 2 * tiny.maxSeqLen);
  assert.equal(bench.batchesOf(0).length, 2);
  assert.deepEqual(bench.batchesOf(2), bench.batchesOf(0));
  assert.notDeepEqual(bench.batchesOf(1), bench.batchesOf(0));
  const { seconds, stats } = await runSteps(bench, 2);
  assert.ok(seconds > 0);
  assert.equal(bench.trainer.steps, 2);
  // Two steps of two micro-batches: every label counted, the loss near ln(96) for a fresh model.
  const labels = [0, 1].flatMap((i) => bench.batchesOf(i)).reduce((n, b) => n + b.labelIds.length, 0);
  assert.equal(stats.labels, labels);
  assert.ok(Math.abs(stats.loss - Math.log(tiny.vocabSize)) < 0.5, `loss ${stats.loss}`);
});

Deno.test("benchStep reports the step's throughput and memory", async () => {
  const k = new Kernels(await requestGpu());
  const r = await benchStep(k, tiny, { microBatch: 2, warmupSteps: 1, timedSteps: 2 });
  assert.equal(r.bench, "train_step");
  assert.deepEqual([r.micro_batch, r.accumulate, r.skipped_steps], [2, 1, 0]);
  assert.ok(r.tokens_per_s > 0 && r.ms_per_step > 0 && r.ms_alone > 0 && r.gpu_mem_gib >= 0);
  assert.ok(Number.isFinite(r.loss) && Number.isFinite(r.grad_norm) && r.grad_norm > 0);
});
