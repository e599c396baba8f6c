/**
 * One optimizer step of finetuning on the GPU: zero the gradients, the classifier's forward, loss and
 * backward for one batch (src/model/classifier.ts), the gradient norm and AdamW, recorded into one
 * compute pass and one submit. Per step the host writes only the batch, the dropout seeds and the
 * learning rate; it reads the loss when asked (`readStats`), never inside a step.
 *
 * The recipe's finetuning does not clip gradients: the norm is still computed (a step with a non-finite
 * gradient is skipped, and the norm is reported) but the clip factor is 1.
 *
 * With f16 storage (the classifier's `storage`) the gradients carry a dynamic loss scale, as in
 * pretraining: a step whose gradients overflow is skipped and halves the scale, and `reset` restores
 * GradScaler's initial 2^16.
 *
 * A finetuner is planned once per label count and reused: `reset` starts a new run (another seed,
 * another task with as many labels) on the same buffers.
 *
 * The finetuner also queues the classifier's predictions (`predict`), so that both go through one waiter.
 * On the built-in backend the host queues steps without waiting. On Dawn it keeps at most
 * {@linkcode FINETUNE_PACED_DEPTH} steps (or prediction batches) in flight and waits only for those that
 * should be done (src/train/waiter.ts), as pretraining does. Queued without waits, compact's finetuning
 * under Dawn ran CoLA's epochs of 535 steps in 3.2 to 30.5 s on an H100 (the built-in backend: 2.2 s), its
 * loss read every 100 steps with work queued: the late resolution pretraining's pacing avoids. The paced
 * queue model takes the GPU time of whatever it measured last, so the first wait after a switch between
 * predicting and training may come early and resolve late; the next measurement corrects it.
 */
import { readF32, writeBuffer } from "../gpu/buffers.ts";
import { encodeDispatches, type Kernels, submitDispatches, writeUniforms } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import {
  type ClassifierBatch,
  type ClassifierShape,
  type GpuClassifier,
  planClassifier,
} from "../model/classifier.ts";
import { dropoutSiteCount } from "../model/dropout_sites.ts";
import { INITIAL_LOSS_SCALE, LOSS_SCALE_GROWTH_INTERVAL, writeLossScale } from "../model/loss_scale.ts";
import {
  adamwStepUniforms,
  OPTIMIZER_STATS_BYTES,
  planAdamw,
  readStepStats,
  zeroBuffer,
} from "./optimizer.ts";
import { draws, streamKey } from "./random.ts";
import { pacedWaiter } from "./waiter.ts";

/** The random streams of a finetuning seed: the data order's (src/eval/finetune.ts) and dropout's. */
export const ORDER_STREAM = 0;
export const DROPOUT_STREAM = 1;

/**
 * The dropout seeds of optimizer step `step` (1-based) of a run seeded `seed`: one per site
 * (src/model/dropout_sites.ts), draws 0 .. sites-1 of the step's stream in {@linkcode DROPOUT_STREAM}.
 */
export function stepDropoutSeeds(seed: number, step: number, sites: number): Uint32Array<ArrayBuffer> {
  return draws(streamKey(seed, DROPOUT_STREAM, step), sites);
}

/** The largest f32: as a clipping threshold, no clipping. */
const NO_CLIP = 3.4028234663852886e38;

/** AdamW's hyperparameters (the finetuning recipe's values are in src/eval/finetune.ts), and the pacing. */
export interface FinetunerOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Wait only for steps the GPU queue's model says are done (src/train/waiter.ts). Default: on Dawn. */
  paced?: boolean;
}

/**
 * Steps in flight under the paced waiter. Finetuning's steps are short (compact's at batch 16 on an H100:
 * 4-7 ms built-in, 6 ms at best under Dawn), so more are queued than pretraining's three, to cover the
 * host's timer wake-ups.
 */
export const FINETUNE_PACED_DEPTH = 8;

/** What the GPU accumulated since the last `readStats`. */
export interface FinetuneStats {
  /** Mean loss over the examples of the steps since the last read (NaN if none). */
  loss: number;
  examples: number;
  /** Gradient norm of the last step. */
  gradNorm: number;
  /** Steps skipped for a non-finite gradient since the last `reset` (with f16 storage, each lowers the loss scale). */
  skippedSteps: number;
}

/** A classifier with its optimizer state. */
export interface Finetuner {
  classifier: GpuClassifier;
  /** Starts a run from `params` (classifierLayout): AdamW's moments, step count and stats back to zero. */
  reset(params: Float32Array<ArrayBuffer>): void;
  /**
   * Queues one optimizer step on `batch` at learning rate `lr`; its dropout masks come from `seed` and
   * the step number ({@linkcode stepDropoutSeeds}). When paced it first waits until the step queued
   * {@linkcode FINETUNE_PACED_DEPTH} steps earlier should be done; resolves once this one is queued.
   */
  step(batch: ClassifierBatch, lr: number, seed: number): Promise<void>;
  /** Steps since the last `reset`. */
  readonly steps: number;
  /** Reads and resets the loss totals, and reads the optimizer stats (one GPU round trip). */
  readStats(): Promise<FinetuneStats>;
  /** Reads the parameters (classifierLayout). */
  readParams(): Promise<Float32Array>;
  /**
   * Queues the classifier's forward on `batch`, dropout off, and a copy of its `batch.count` rows of logits
   * into `out` at byte `offset`. Waits first as `step` does; unpaced, every {@linkcode PREDICT_QUEUE}-th
   * call waits for the GPU instead, so that queued uploads stay bounded.
   */
  predict(batch: ClassifierBatch, out: GPUBuffer, offset: number): Promise<void>;
  /** Resolves when everything queued should be done, so that a read that follows does not wait long. */
  settle(): Promise<void>;
}

/** Unpaced predictions between waits for the GPU. */
export const PREDICT_QUEUE = 64;

/** Plans the classifier for `shape` and the optimizer around it. */
export async function planFinetuner(
  k: Kernels,
  config: ModelConfig,
  shape: ClassifierShape,
  options: FinetunerOptions,
): Promise<Finetuner> {
  const gpu = k.gpu;
  const classifier = await planClassifier(k, config, shape);
  const { params, grads, layout } = classifier;
  const length = layout.totalSize;
  const { lossScale } = classifier;
  const { paced = gpu.backend === "dawn", ...adam } = options;
  const { m, v, stats, stepUniforms, zero, update } = await planAdamw(k, {
    params,
    grads,
    layout,
    maxNorm: NO_CLIP,
    lossScale,
    dynamicLossScale: lossScale && { growthInterval: LOSS_SCALE_GROWTH_INTERVAL },
    ...adam,
  });
  const resetMoments = [
    ...await zeroBuffer(k, { buffer: m, length }),
    ...await zeroBuffer(k, { buffer: v, length }),
  ];
  // The whole step of each planned length, in one compute pass.
  const stepLists = new Map(
    classifier.seqs.map((seq) => [seq, [...zero, ...classifier.train(seq), ...update]]),
  );
  const sites = dropoutSiteCount(config);
  const zeros = new Uint32Array(OPTIMIZER_STATS_BYTES / 4);
  let steps = 0;
  let unpacedPredictions = 0;
  const wait = paced ? pacedWaiter(gpu, stats, FINETUNE_PACED_DEPTH) : undefined;

  return {
    classifier,
    get steps() {
      return steps;
    },
    reset(start) {
      if (start.length !== length) {
        throw new RangeError(`finetuner: ${start.length} parameters, the classifier has ${length}`);
      }
      writeBuffer(gpu, params, start);
      writeBuffer(gpu, stats, zeros);
      writeBuffer(gpu, classifier.lossTotals, zeros.subarray(0, 2));
      if (lossScale) writeLossScale(gpu, lossScale, INITIAL_LOSS_SCALE);
      submitDispatches(gpu, resetMoments);
      steps = 0;
    },
    async step(batch, lr, seed) {
      const list = stepLists.get(batch.seq);
      if (!list) {
        throw new RangeError(`finetuner: a batch of width ${batch.seq}, planned: ${classifier.seqs}`);
      }
      await wait?.beforeSubmit();
      steps++;
      classifier.writeBatch(batch);
      if (shape.dropout > 0) classifier.writeSeeds(stepDropoutSeeds(seed, steps, sites));
      writeUniforms(gpu, stepUniforms, adamwStepUniforms({ lr, step: steps }));
      if (!wait) return submitDispatches(gpu, list);
      const encoder = gpu.device.createCommandEncoder();
      encodeDispatches(encoder, list, wait.onlyPass());
      wait.submitLast(encoder);
    },
    async readStats() {
      await wait?.settle();
      const s = await readStepStats(gpu, classifier.lossTotals, stats);
      return { loss: s.loss, examples: s.rows, gradNorm: s.norm, skippedSteps: s.skippedSteps };
    },
    async readParams() {
      await wait?.settle();
      return readF32(gpu, params, length);
    },
    async predict(batch, out, offset) {
      const infer = classifier.infer(batch.seq);
      await wait?.beforeSubmit();
      classifier.writeBatch(batch);
      const encoder = gpu.device.createCommandEncoder();
      encodeDispatches(encoder, infer, wait?.onlyPass());
      encoder.copyBufferToBuffer(classifier.logits, 0, out, offset, batch.count * classifier.labels * 4);
      if (wait) return wait.submitLast(encoder);
      gpu.device.queue.submit([encoder.finish()]);
      if (++unpacedPredictions % PREDICT_QUEUE === 0) await gpu.device.queue.onSubmittedWorkDone();
    },
    settle: () => wait?.settle() ?? Promise.resolve(),
  };
}
