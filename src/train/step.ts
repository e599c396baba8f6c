/**
 * One optimizer step of MLM pretraining on the GPU: zero the gradients, run each micro-batch's forward
 * and backward (adding into the gradients, each scaled so the step averages over its micro-batches),
 * then the global gradient norm, clipping and AdamW. A step is one submit per micro-batch plus one for
 * the update, and the host reads the loss and optimizer stats only when asked (`readStats`, every N
 * steps). The host never waits on the step it has just queued: it waits only for the one before,
 * so the GPU always has the next step queued while the CPU stays at most two steps ahead (which
 * keeps the budget clock honest and lets the event loop handle Ctrl-C).
 */
import { paramBuffer, storageBuffer, uploadBuffer, writeBuffer, writeParams } from "../gpu/buffers.ts";
import { checked, type Gpu } from "../gpu/device.ts";
import { type Dispatch, encodeDispatches, type Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { type GpuModel, type ModelBatch, type ModelShape, planModel } from "../model/model.ts";
import { readLossTotals } from "../model/layers/cross_entropy.ts";
import {
  adamw,
  adamwStepParams,
  decayFlags,
  gradNorm,
  OPTIMIZER_STATS_BYTES,
  readOptimizerStats,
  zeroBuffer,
} from "./optimizer.ts";

export interface TrainerOptions {
  /** Gradient clipping threshold of the global L2 norm (0.5 in the recipe). */
  maxNorm?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/** What the GPU accumulated since the last `readStats`. */
export interface TrainStats {
  /** Mean MLM loss over the labels of the steps since the last read (NaN if none). */
  loss: number;
  /** Labels those steps predicted. */
  labels: number;
  /** Gradient norm of the last step, before clipping. */
  gradNorm: number;
  /** The last step's update was skipped for a non-finite gradient. */
  lastSkipped: boolean;
  /** Steps skipped since the trainer was made. */
  skippedSteps: number;
}

/** A model with its optimizer state, ready to take steps. */
export interface Trainer {
  gpu: Gpu;
  model: GpuModel;
  /** AdamW moments, in the parameter layout. */
  m: GPUBuffer;
  v: GPUBuffer;
  /**
   * What `step` submits around the micro-batches' `model.microBatch`: the gradient reset before the first,
   * and the norm, clipping and AdamW after the last (exposed for src/bench/profile.ts, which times each
   * dispatch).
   */
  zero: readonly Dispatch[];
  update: readonly Dispatch[];
  /** Optimizer steps taken (the AdamW step number of the last one). */
  readonly steps: number;
  /**
   * Queues one optimizer step over `microBatches` at learning rate `lr`; resolves once the step
   * queued before the previous one has finished on the GPU.
   */
  step(microBatches: readonly ModelBatch[], lr: number): Promise<void>;
  /** Reads and resets the loss totals, and reads the optimizer stats (one GPU round trip). */
  readStats(): Promise<TrainStats>;
  /** Sets the step counter (after loading optimizer state from a checkpoint). */
  setSteps(steps: number): void;
}

/** Plans the model for `shape` and the optimizer around it. */
export async function planTrainer(
  k: Kernels,
  config: ModelConfig,
  shape: ModelShape,
  options: TrainerOptions = {},
): Promise<Trainer> {
  const gpu = k.gpu;
  const model = await planModel(k, config, shape);
  const length = model.layout.totalSize;
  // The moments are as large as the parameters: a failure here frees the model too, so that the caller
  // can try a smaller micro-batch.
  const moments: GPUBuffer[] = [];
  try {
    for (const name of ["adam m", "adam v"]) {
      moments.push(await checked(gpu, `buffer ${name}`, () => storageBuffer(gpu, name, length * 4)));
    }
  } catch (e) {
    for (const buffer of moments) buffer.destroy();
    model.destroy();
    throw e;
  }
  const [m, v] = moments;
  const stats = storageBuffer(gpu, "optimizer stats", OPTIMIZER_STATS_BYTES);
  const stepParams = paramBuffer(gpu, "adamw step", adamwStepParams({ lr: 0, step: 1 }));
  const decay = uploadBuffer(gpu, "weight decay flags", decayFlags(model.layout));
  const zero = await zeroBuffer(k, { buffer: model.grads, length });
  const update: Dispatch[] = [
    ...await gradNorm(k, { grads: model.grads, length, stats, maxNorm: options.maxNorm ?? 0.5 }),
    ...await adamw(k, {
      params: model.params,
      grads: model.grads,
      m,
      v,
      length,
      decay,
      stats,
      step: stepParams,
      ...options,
    }),
  ];
  const zeroTotals = new Uint32Array(2);
  let steps = 0;
  const inFlight: Promise<void>[] = [];

  const submit = (...lists: readonly Dispatch[][]) => {
    const encoder = gpu.device.createCommandEncoder();
    for (const list of lists) encodeDispatches(encoder, list);
    gpu.device.queue.submit([encoder.finish()]);
  };

  return {
    gpu,
    model,
    m,
    v,
    zero,
    update,
    get steps() {
      return steps;
    },
    setSteps(n: number) {
      steps = n;
    },
    async step(microBatches, lr) {
      if (microBatches.length === 0) throw new RangeError("a step needs at least one micro-batch");
      if (inFlight.length >= 2) await inFlight.shift();
      steps++;
      writeParams(gpu, stepParams, adamwStepParams({ lr, step: steps }));
      microBatches.forEach((batch, i) => {
        // Each micro-batch's loss is the mean over its labels; the step averages the micro-batches.
        model.writeBatch(batch, 1 / (Math.max(1, batch.labelIds.length) * microBatches.length));
        submit(...(i === 0 ? [zero, model.microBatch] : [model.microBatch]));
      });
      submit(update);
      inFlight.push(gpu.device.queue.onSubmittedWorkDone());
    },
    async readStats() {
      const totals = await readLossTotals(gpu, model.lossTotals);
      writeBuffer(gpu, model.lossTotals, zeroTotals);
      const s = await readOptimizerStats(gpu, stats);
      return {
        loss: totals.count > 0 ? totals.sum / totals.count : NaN,
        labels: totals.count,
        gradNorm: s.norm,
        lastSkipped: s.skipped,
        skippedSteps: s.skippedSteps,
      };
    },
  };
}
