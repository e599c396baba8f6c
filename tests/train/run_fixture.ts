/** The micro model and training states of fixtures/train/run (see fixtures/train/make_run.ts). */
import type { ModelConfig } from "../../src/model/config.ts";
import { paramLayout } from "../../src/model/params.ts";
import { parseOptions } from "../../src/train/options.ts";
import type { TrainState, Weights } from "../../src/train/checkpoint_state.ts";
import type { MetricRecord } from "../../src/train/metrics.ts";

/** A model of a few hundred parameters, so checkpoints are a few kilobytes. */
export const microConfig: ModelConfig = {
  vocabSize: 16,
  hidden: 4,
  layers: 1,
  heads: 1,
  intermediate: 8,
  maxSeqLen: 8,
  ffn: "gelu",
  positions: "scaled-sinusoidal",
  normEps: 1e-12,
};

/** The state of the fixture run after `step` optimizer steps. */
export function fixtureState(step: number): TrainState {
  const { options } = parseOptions(
    [
      "--preset",
      "tiny",
      "--budget",
      "20steps",
      "--batch",
      "4",
      "--micro-batch",
      "2",
      "--mask-rate",
      "0.15",
      "--out",
      "runs/fixture",
    ],
  );
  return {
    step,
    updates: step - 1,
    skipped: 1,
    data: { epoch: 0, index: step * 4 },
    dataset: { sequences: 100, vocabHash: "0123456789abcdef" },
    usedSeconds: step * 1.5,
    tokensSeen: step * 32,
    config: microConfig,
    options: { ...options, preset: "tiny", precision: "f32" },
  };
}

/** Parameters and moments after `step` steps: distinct values in every tensor, zeros in the alignment gaps. */
export function fixtureWeights(step: number): Weights {
  const layout = paramLayout(microConfig);
  const fill = (scale: number) => {
    const out = new Float32Array(layout.totalSize);
    for (const t of layout.tensors) {
      for (let i = 0; i < t.size; i++) out[t.offset + i] = scale * Math.sin(step + t.offset + i);
    }
    return out;
  };
  return { params: fill(1), m: fill(0.1), v: fill(0.01).map(Math.abs) };
}

/** metrics.jsonl of the fixture run: one record a step, steps 1 to 5. */
export function fixtureRecords(): MetricRecord[] {
  return [1, 2, 3, 4, 5].map((step) => ({
    step,
    seconds: step * 1.5,
    tokens: step * 32,
    loss: 3 - step * 0.1,
    lr: 1e-3 * step / 5,
    batch: 4,
    tokensPerSecond: 21.3,
    epoch: 0,
    skipped: 0,
  }));
}
