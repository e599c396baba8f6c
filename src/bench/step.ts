/**
 * Full training-step benchmark: the MLM step (forward, backward, clipping, AdamW) of a config at a
 * micro-batch size, on Zipf-distributed tokens masked as in training, timed over back-to-back steps with one GPU
 * round trip at the end (the same measure as `torch_peer.py bench`).
 */
import type { Kernels } from "../gpu/kernels.ts";
import { type StorageType, writeBuffer } from "../gpu/buffers.ts";
import type { ModelConfig } from "../model/config.ts";
import { initParams } from "../model/init.ts";
import type { ModelBatch } from "../model/model.ts";
import { BERT_MASK_RATE, maxLabels } from "../train/masking.ts";
import { zipfBatch } from "./batches.ts";
import { planTrainer, type Trainer, type TrainStats } from "../train/step.ts";

export interface StepBenchOptions {
  microBatch: number;
  /** Micro-batches accumulated per optimizer step (default 1, as the peer's bench). */
  accumulate?: number;
  warmupSteps?: number;
  timedSteps?: number;
  seed?: number;
  /** Storage of activations and the products' weight copy (default f32), as pretrain's --precision. */
  precision?: StorageType;
  /** How the host waits for the GPU (see TrainerOptions in src/train/step.ts); default by backend. */
  paced?: boolean;
}

export interface StepBenchResult {
  bench: "train_step";
  precision: StorageType;
  micro_batch: number;
  accumulate: number;
  tokens_per_s: number;
  ms_per_step: number;
  /**
   * One more step queued on an idle GPU, until its stats are read: its GPU time plus one round trip. Far
   * below `ms_per_step`, it says the host's waits, not the GPU, limit the back-to-back steps.
   */
  ms_alone: number;
  /** GPU time of the last timed step (timestamps; paced waits only), else null. */
  gpu_ms_per_step: number | null;
  /** Bytes of every buffer the step allocated (parameters, gradients, moments, activations, scratch). */
  gpu_mem_gib: number;
  loss: number;
  grad_norm: number;
  skipped_steps: number;
}

/** A trainer planned and initialized for a benchmark, and the micro-batches its steps cycle through. */
export interface StepBench {
  trainer: Trainer;
  microBatch: number;
  accumulate: number;
  /** Tokens one optimizer step trains on. */
  tokensPerStep: number;
  /** The micro-batches of step `i` (two steps' worth, alternating). */
  batchesOf(i: number): ModelBatch[];
}

/** Plans the trainer for `options.microBatch` and writes freshly initialized weights. */
export async function planStepBench(
  k: Kernels,
  config: ModelConfig,
  options: Pick<StepBenchOptions, "microBatch" | "accumulate" | "seed" | "precision" | "paced">,
): Promise<StepBench> {
  const { microBatch, accumulate = 1, seed = 0, precision = "f32" } = options;
  const seq = config.maxSeqLen;
  const trainer = await planTrainer(k, config, {
    batch: microBatch,
    seq,
    maxLabels: maxLabels(microBatch, seq, BERT_MASK_RATE),
    storage: precision,
  }, { paced: options.paced });
  writeBuffer(k.gpu, trainer.model.params, initParams(config, { seed }));
  const batches = Array.from({ length: accumulate * 2 }, (_, i) => zipfBatch(config, microBatch, seed + i));
  return {
    trainer,
    microBatch,
    accumulate,
    tokensPerStep: accumulate * microBatch * seq,
    batchesOf: (i) => batches.slice((i % 2) * accumulate, (i % 2 + 1) * accumulate),
  };
}

/**
 * Queues `steps` optimizer steps back to back and waits for them with one GPU round trip (the stats
 * read): the wall seconds from the first queued step to the stats in hand, and the stats.
 */
export async function runSteps(
  bench: StepBench,
  steps: number,
): Promise<{ seconds: number; stats: TrainStats }> {
  const start = performance.now();
  for (let i = 0; i < steps; i++) await bench.trainer.step(bench.batchesOf(i), 1e-4);
  const stats = await bench.trainer.readStats();
  return { seconds: (performance.now() - start) / 1000, stats };
}

/** Times the training step; resolves after the timed steps have finished on the GPU. */
export async function benchStep(
  k: Kernels,
  config: ModelConfig,
  options: StepBenchOptions,
): Promise<StepBenchResult> {
  const { warmupSteps = 3, timedSteps = 10 } = options;
  const bench = await planStepBench(k, config, options);
  await runSteps(bench, warmupSteps);
  const { seconds, stats } = await runSteps(bench, timedSteps);
  const { trainer } = bench;
  const gpuMs = trainer.gpuStepMs;
  const alone = await runSteps(bench, 1);
  const memory = trainer.model.bytes + 2 * trainer.m.size;
  return {
    bench: "train_step",
    precision: options.precision ?? "f32",
    micro_batch: bench.microBatch,
    accumulate: bench.accumulate,
    tokens_per_s: Math.round((timedSteps * bench.tokensPerStep) / seconds),
    ms_per_step: Math.round((seconds / timedSteps) * 1e5) / 100,
    ms_alone: Math.round(alone.seconds * 1e5) / 100,
    gpu_ms_per_step: gpuMs === undefined ? null : Math.round(gpuMs * 100) / 100,
    gpu_mem_gib: Math.round((memory / 2 ** 30) * 100) / 100,
    loss: stats.loss,
    grad_norm: stats.gradNorm,
    skipped_steps: stats.skippedSteps,
  };
}
