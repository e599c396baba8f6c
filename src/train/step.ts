/**
 * One optimizer step of MLM pretraining on the GPU: zero the gradients, run each micro-batch's forward
 * and backward (adding into the gradients, each scaled so the step averages over its micro-batches),
 * then the global gradient norm, clipping and AdamW. A step is one submit per micro-batch plus one for
 * the update, and the host reads the loss and optimizer stats only when asked (`readStats`, every N
 * steps). The host never waits on the step it has just queued (src/train/waiter.ts): on the built-in
 * backend it waits only for the one before, so the GPU always has the next step queued while the CPU
 * stays at most two steps ahead (which keeps the budget clock honest and lets the event loop handle
 * Ctrl-C); on Dawn it keeps three steps in flight and waits only for a step its model of the GPU's queue
 * says is done.
 */
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encodeDispatches, type Kernels, writeUniforms } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { dropoutSiteCount } from "../model/dropout_sites.ts";
import { LOSS_SCALE_GROWTH_INTERVAL } from "../model/loss_scale.ts";
import { type GpuModel, type ModelBatch, type ModelShape, planModel } from "../model/model.ts";
import { adamwStepUniforms, planAdamw, type PlannedAdamw, readStepStats } from "./optimizer.ts";
import { draws, streamKey } from "./random.ts";
import { doneWaiter, pacedWaiter } from "./waiter.ts";

/** The recipe's clipping threshold of the gradients' global L2 norm. */
export const MAX_GRAD_NORM = 0.5;

/** What the GPU accumulated since the last `readStats`. */
export interface TrainStats {
  /** Mean MLM loss over the labels of the steps since the last read (NaN if none). */
  loss: number;
  /** Labels those steps predicted. */
  labels: number;
  /** Gradient norm of the last step, before clipping. */
  gradNorm: number;
  /** Steps skipped since the trainer was made. */
  skippedSteps: number;
  /** The loss scale the next step's gradients carry (1 without loss scaling). */
  lossScale: number;
}

/** A model with its optimizer state, ready to take steps. */
export interface Trainer {
  /** The device the trainer runs on. */
  gpu: Gpu;
  /** The planned model: its buffers and the dispatches of one micro-batch. */
  model: GpuModel;
  /** AdamW moments, in the parameter layout. */
  m: GPUBuffer;
  /** AdamW second moments, in the parameter layout. */
  v: GPUBuffer;
  /**
   * What `step` submits around the micro-batches' `model.microBatch`: the gradient reset before the first,
   * and the norm, clipping and AdamW after the last (exposed for src/bench/profile.ts, which times each
   * dispatch).
   */
  zero: readonly Dispatch[];
  /** The norm, clipping and AdamW dispatches that end each step. */
  update: readonly Dispatch[];
  /** Optimizer steps taken (the AdamW step number of the last one). */
  readonly steps: number;
  /** GPU time of the last step the host measured (timestamps, paced waits only), in ms; else undefined. */
  readonly gpuStepMs: number | undefined;
  /**
   * Queues one optimizer step over `microBatches` at learning rate `lr`, first waiting until the step
   * queued two (on Dawn three) steps earlier has finished on the GPU; resolves once this one is queued.
   */
  step(microBatches: readonly ModelBatch[], lr: number): Promise<void>;
  /** Reads and resets the loss totals, and reads the optimizer stats (one GPU round trip). */
  readStats(): Promise<TrainStats>;
  /** Sets the step counter (after loading optimizer state from a checkpoint). */
  setSteps(steps: number): void;
}

/** How the host paces itself against the GPU (see the module's text), and the run's seed. */
export interface TrainerOptions {
  /** Wait only for steps the GPU queue's model says are done (src/train/waiter.ts). Default: on Dawn. */
  paced?: boolean;
  /** The run's seed, which with the step and micro-batch numbers keys the dropout masks (default 0). */
  seed?: number;
}

/** The random stream of pretraining's dropout masks (the data order and the MLM masks use others). */
export const PRETRAIN_DROPOUT_STREAM = 0xd809;

/**
 * The dropout seeds of micro-batch `microBatch` (0-based) of optimizer step `step` (1-based) of a run
 * seeded `seed`: one per site (src/model/dropout_sites.ts). A resumed run draws the same ones.
 */
export function microBatchDropoutSeeds(
  seed: number,
  step: number,
  microBatch: number,
  sites: number,
): Uint32Array<ArrayBuffer> {
  return draws(streamKey(seed, PRETRAIN_DROPOUT_STREAM, step, microBatch), sites);
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
  let optimizer: PlannedAdamw;
  try {
    optimizer = await planAdamw(k, {
      params: model.params,
      grads: model.grads,
      layout: model.layout,
      maxNorm: MAX_GRAD_NORM,
      lossScale: model.lossScale,
      dynamicLossScale: model.lossScale && { growthInterval: LOSS_SCALE_GROWTH_INTERVAL },
    });
  } catch (e) {
    model.destroy(); // so that the caller can try a smaller micro-batch
    throw e;
  }
  const { m, v, stats, stepUniforms, zero, update } = optimizer;
  const sites = dropoutSiteCount(config);
  const dropout = (shape.dropout ?? 0) > 0;
  let steps = 0;
  const wait = (options.paced ?? gpu.backend === "dawn") ? pacedWaiter(gpu, stats) : doneWaiter(gpu);

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
    get gpuStepMs() {
      return wait.gpuStepMs();
    },
    setSteps(n: number) {
      steps = n;
    },
    async step(microBatches, lr) {
      if (microBatches.length === 0) throw new RangeError("a step needs at least one micro-batch");
      await wait.beforeSubmit();
      steps++;
      writeUniforms(gpu, stepUniforms, adamwStepUniforms({ lr, step: steps }));
      microBatches.forEach((batch, i) => {
        // Each micro-batch's loss is the mean over its labels; the step averages the micro-batches.
        model.writeBatch(batch, 1 / (Math.max(1, batch.labelIds.length) * microBatches.length));
        if (dropout) model.writeSeeds(microBatchDropoutSeeds(options.seed ?? 0, steps, i, sites));
        const encoder = gpu.device.createCommandEncoder();
        if (i === 0) encodeDispatches(encoder, zero, wait.firstPass());
        encodeDispatches(encoder, model.microBatch);
        gpu.device.queue.submit([encoder.finish()]);
      });
      const end = gpu.device.createCommandEncoder();
      encodeDispatches(end, update, wait.lastPass());
      wait.submitLast(end);
    },
    async readStats() {
      await wait.settle();
      const s = await readStepStats(gpu, model.lossTotals, stats);
      return {
        loss: s.loss,
        labels: s.rows,
        gradNorm: s.norm,
        skippedSteps: s.skippedSteps,
        lossScale: s.lossScale,
      };
    },
  };
}
