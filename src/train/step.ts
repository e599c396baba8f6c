/**
 * One optimizer step of MLM pretraining on the GPU: zero the gradients, run each micro-batch's forward
 * and backward (adding into the gradients, each scaled so the step averages over its micro-batches),
 * then the global gradient norm, clipping and AdamW. A step is one submit per micro-batch plus one for
 * the update, and the host reads the loss and optimizer stats only when asked (`readStats`, every N
 * steps). The host never waits on the step it has just queued: it waits only for the one before,
 * so the GPU always has the next step queued while the CPU stays at most two steps ahead (which
 * keeps the budget clock honest and lets the event loop handle Ctrl-C).
 *
 * On Dawn the host does not keep a completion promise pending while the GPU works: Dawn's Node binding
 * polls the device in a loop for as long as one is pending, and on an H100 a step awaited that way took
 * 2 to 3 times as long as back-to-back steps did (see the README's benchmarks). It sleeps instead until
 * the step it waits for should be done (timed from earlier steps), then waits for that step alone, by
 * mapping a marker buffer that the step writes last.
 */
import { writeParams } from "../gpu/buffers.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encodeDispatches, type Kernels, submitDispatches } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { type GpuModel, type ModelBatch, type ModelShape, planModel } from "../model/model.ts";
import { adamwStepParams, planAdamw, type PlannedAdamw, readStepStats } from "./optimizer.ts";

/** The recipe's clipping threshold of the gradients' global L2 norm. */
export const MAX_GRAD_NORM = 0.5;
/** Finite steps in a row before a model's loss scale doubles (torch.amp.GradScaler's default). */
const LOSS_SCALE_GROWTH_INTERVAL = 2000;

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

/** How the host paces itself against the GPU (see the module's text). */
export interface TrainerOptions {
  /** Sleep until a step should be done, then wait for it by a marker map. Default: on Dawn. */
  paced?: boolean;
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
  const { m, v, stats, stepParams, zero, update } = optimizer;
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
    setSteps(n: number) {
      steps = n;
    },
    async step(microBatches, lr) {
      if (microBatches.length === 0) throw new RangeError("a step needs at least one micro-batch");
      await wait.beforeSubmit();
      steps++;
      writeParams(gpu, stepParams, adamwStepParams({ lr, step: steps }));
      microBatches.forEach((batch, i) => {
        // Each micro-batch's loss is the mean over its labels; the step averages the micro-batches.
        model.writeBatch(batch, 1 / (Math.max(1, batch.labelIds.length) * microBatches.length));
        submitDispatches(gpu, ...(i === 0 ? [zero, model.microBatch] : [model.microBatch]));
      });
      const end = gpu.device.createCommandEncoder();
      encodeDispatches(end, update);
      wait.submitLast(end);
    },
    async readStats() {
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

/** Keeps the host at most two steps ahead of the GPU: see the module's text. */
interface StepWaiter {
  /** Resolves once the step before the previous one has finished. */
  beforeSubmit(): Promise<void>;
  /** Submits a step's last commands, `encoder`, with what the waiter needs to see the step end. */
  submitLast(encoder: GPUCommandEncoder): void;
}

/** Waits by onSubmittedWorkDone promises made at each submit. */
function doneWaiter(gpu: Gpu): StepWaiter {
  const inFlight: Promise<void>[] = [];
  return {
    async beforeSubmit() {
      if (inFlight.length >= 2) await inFlight.shift();
    },
    submitLast(encoder) {
      gpu.device.queue.submit([encoder.finish()]);
      inFlight.push(gpu.device.queue.onSubmittedWorkDone());
    },
  };
}

/**
 * Waits by sleeping until the step should be done, then mapping the marker that step wrote: two small
 * buffers, alternating, each written by a copy from `source` at the end of a step's last command buffer.
 */
function pacedWaiter(gpu: Gpu, source: GPUBuffer): StepWaiter {
  const markers = [0, 1].map((i) =>
    gpu.device.createBuffer({
      label: `step marker ${i}`,
      size: 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    })
  );
  let submitted = 0;
  let done = 0;
  let lastDone = performance.now();
  // The GPU time of a step, from the spacing of completions while two steps are queued.
  let stepMs = 0;
  return {
    async beforeSubmit() {
      if (submitted - done < 2) return;
      if (stepMs > 0) {
        const sleep = lastDone + 0.9 * stepMs - performance.now();
        if (sleep > 1) await new Promise((resolve) => setTimeout(resolve, sleep));
      }
      const marker = markers[done % 2];
      await marker.mapAsync(GPUMapMode.READ);
      marker.unmap();
      const now = performance.now();
      if (done > 0) stepMs = stepMs > 0 ? 0.8 * stepMs + 0.2 * (now - lastDone) : now - lastDone;
      lastDone = now;
      done++;
    },
    submitLast(encoder) {
      encoder.copyBufferToBuffer(source, 0, markers[submitted % 2], 0, 4);
      gpu.device.queue.submit([encoder.finish()]);
      submitted++;
    },
  };
}
