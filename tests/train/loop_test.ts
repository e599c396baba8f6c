import assert from "node:assert/strict";
import { requestGpu } from "../../src/gpu/device.ts";
import { writeBuffer } from "../../src/gpu/buffers.ts";
import { Kernels } from "../../src/gpu/kernels.ts";
import { type ModelConfig, tiny } from "../../src/model/config.ts";
import { initParams } from "../../src/model/init.ts";
import { BatchSource, type SequenceSource } from "../../src/train/batches.ts";
import { Budget } from "../../src/train/budget.ts";
import {
  type LoopEvents,
  type LoopState,
  readWeights,
  trainLoop,
  writeWeights,
} from "../../src/train/loop.ts";
import { maxLabels } from "../../src/train/masking.ts";
import type { Weights } from "../../src/train/checkpoint_state.ts";
import type { MetricRecord } from "../../src/train/metrics.ts";
import { planTrainer } from "../../src/train/step.ts";
import { learningRate } from "../../src/train/schedule.ts";

const config: ModelConfig = { ...tiny, vocabSize: 64 };
const seq = config.maxSeqLen;
const microBatch = 4;

/**
 * The fixture corpus: 256 sequences, each alternating two random tokens of a 40-token range, so a
 * masked token is predictable from the unmasked ones two positions away and a model that learns
 * to look there drives the MLM loss far below the ln(40) of guessing from the token range.
 */
function alternatingCorpus(sequences: number): SequenceSource {
  const tokens = new Uint16Array(sequences * seq);
  let s = 12345;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  for (let q = 0; q < sequences; q++) {
    const pair = [10 + (next() % 40), 10 + (next() % 40)];
    for (let t = 0; t < seq; t++) tokens[q * seq + t] = pair[t % 2];
  }
  return {
    sequences,
    seqLen: seq,
    read: (first, count) => Promise.resolve(tokens.slice(first * seq, (first + count) * seq)),
  };
}

const START: LoopState = { step: 0, skipped: 0, tokensSeen: 0, data: { epoch: 0, index: 0 }, epoch: 0 };

/**
 * Runs the loop over a budget of `total` steps from `start` (and `weights`), keeping records; it is
 * interrupted, as by Ctrl-C, once `until` steps are done.
 */
async function run(total: number, until: number, start = START, weights?: Weights) {
  const k = new Kernels(await requestGpu());
  const trainer = await planTrainer(k, config, {
    batch: microBatch,
    seq,
    maxLabels: maxLabels(microBatch, seq, 0.15),
  });
  if (weights) writeWeights(trainer, weights);
  else writeBuffer(k.gpu, trainer.model.params, initParams(config, { seed: 1 }));
  trainer.setSteps(start.step);
  const records: MetricRecord[] = [];
  let step = start.step;
  let saved: { state: LoopState; weights: Weights } | undefined;
  const events: LoopEvents = {
    record: (r) => records.push(r),
    progress: (p) => void (step = p.step),
    message: () => {},
    checkpoint: async (state, read) => void (saved = { state, weights: await read() }),
    interrupted: () => step >= until,
  };
  const source = new BatchSource(alternatingCorpus(256), {
    microBatch,
    seed: 3,
    maskRate: 0.15,
    vocabSize: config.vocabSize,
    start: start.data,
  });
  const result = await trainLoop({
    trainer,
    source,
    budget: new Budget({ steps: total }, { steps: start.step }),
    lr: { peak: 1e-2, start: 0.25, peakAt: 0.3 },
    ramp: { target: 2, ramp: 0.5 },
    logEvery: 10,
    checkpointSeconds: Infinity,
    maxNonfinite: 5,
    start,
    budgetLabel: `${total}steps`,
  }, events);
  return { result, records, saved: saved!, weights: await readWeights(trainer) };
}

Deno.test("a tiny model trained for 300 steps drives the MLM loss on the fixture down steadily", async () => {
  const { result, records } = await run(300, 300);
  assert.equal(result.stopped, "budget");
  assert.equal(result.state.step, 300);
  const mean = (rs: MetricRecord[]) => rs.reduce((a, r) => a + r.loss, 0) / rs.length;
  const quarters = [0, 1, 2, 3].map((q) => mean(records.slice(q * 7, q * 7 + 7)));
  for (let q = 1; q < 4; q++) {
    assert.ok(
      quarters[q] < quarters[q - 1],
      `loss rose between quarters: ${quarters.map((l) => l.toFixed(3))}`,
    );
  }
  assert.ok(records[0].loss > 3.5, `starting loss ${records[0].loss}, expected near ln(59) = 4.08`);
  assert.ok(quarters[3] < 0.5 * records[0].loss, `loss fell only from ${records[0].loss} to ${quarters[3]}`);
  // The batch ramps from one micro-batch to two, and every token is counted.
  assert.equal(records[0].batch, microBatch);
  assert.equal(records.at(-1)!.batch, 2 * microBatch);
  assert.equal(result.state.tokensSeen, records.at(-1)!.tokens);
});

Deno.test("a run resumed from its checkpoint reaches exactly the loss and weights of the uninterrupted run", async () => {
  const whole = await run(40, 40);
  const first = await run(40, 20);
  assert.equal(first.saved.state.step, 20);
  const second = await run(40, 40, first.saved.state, first.saved.weights);
  assert.equal(second.result.state.step, 40);
  assert.deepEqual(second.records.map((r) => r.loss), whole.records.slice(2).map((r) => r.loss));
  assert.deepEqual(second.weights.params, whole.weights.params);
  assert.deepEqual(second.weights.m, whole.weights.m);
  assert.deepEqual(second.weights.v, whole.weights.v);
});

Deno.test("steps with non-finite gradients are skipped, and a run of them stops the loop without a checkpoint", async () => {
  const params = initParams(config, { seed: 1 });
  params[0] = NaN; // a poisoned word embedding: every loss and gradient is NaN from the first step
  const zeros = new Float32Array(params.length);
  const { result, records, saved, weights } = await run(40, 40, START, { params, m: zeros, v: zeros });
  assert.equal(result.stopped, "non-finite");
  assert.equal(result.state.step, 10); // the first read, after 10 steps, sees 10 skipped: more than 5
  assert.equal(records.at(-1)!.skipped, 10);
  assert.equal(saved, undefined);
  // Skipped updates leave the parameters as they were.
  assert.deepEqual(weights.params.subarray(1), params.subarray(1));
});

Deno.test("every step gets the schedule's learning rate at the budget used before it, up to the end", async () => {
  const k = new Kernels(await requestGpu());
  const trainer = await planTrainer(k, config, {
    batch: microBatch,
    seq,
    maxLabels: maxLabels(microBatch, seq, 0.15),
  });
  writeBuffer(k.gpu, trainer.model.params, initParams(config, { seed: 1 }));
  const given: number[] = [];
  const step = trainer.step.bind(trainer);
  trainer.step = (micro, lr) => (given.push(lr), step(micro, lr));
  const records: MetricRecord[] = [];
  const total = 20;
  const schedule = { peak: 1e-2, start: 0.25, peakAt: 0.3 };
  await trainLoop({
    trainer,
    source: new BatchSource(alternatingCorpus(64), {
      microBatch,
      seed: 3,
      maskRate: 0.15,
      vocabSize: config.vocabSize,
    }),
    budget: new Budget({ steps: total }),
    lr: schedule,
    ramp: { target: 1, ramp: 0 },
    logEvery: 1,
    checkpointSeconds: Infinity,
    maxNonfinite: 5,
    start: START,
    budgetLabel: `${total}steps`,
  }, {
    record: (r) => records.push(r),
    progress: () => {},
    message: () => {},
    checkpoint: async () => {},
    interrupted: () => false,
  });
  const expected = Array.from({ length: total }, (_, s) => learningRate(schedule, s / total));
  assert.deepEqual(given, expected);
  assert.deepEqual(records.map((r) => r.lr), expected);
  // The triangle's last step is one step's worth of decline above zero: the schedule reaches its end.
  const decline = schedule.peak / ((1 - schedule.peakAt) * total);
  assert.ok(Math.abs(given.at(-1)! - decline) < 1e-12, `last lr ${given.at(-1)}, expected ${decline}`);
  assert.equal(learningRate(schedule, 1), 0);
  trainer.model.destroy();
});
