/**
 * Finetuning on one GLUE task with our WebGPU engine, as the Cramming recipe does it (its GLUE_sane
 * config): 5 epochs over the training set in a seeded random order, batches of 16, AdamW with lr 4e-5,
 * betas 0.9/0.98, eps 1e-6 and no weight decay, the learning rate rising linearly over the first 10% of
 * the steps and then falling to zero along a cosine (transformers' get_cosine_schedule_with_warmup), no
 * gradient clipping, dropout 0.1. Every one is an option.
 *
 * Each batch is padded to the shortest planned length that holds its longest example (see
 * src/model/classifier.ts); predictions sort the examples by length first, so batches pad little.
 *
 * @module
 */
import type { Tokenizer } from "../data/tokenizer.ts";
import { PAD_ID } from "../data/tokenizer.ts";
import { readBuffer, storageBuffer } from "../gpu/buffers.ts";
import type { ClassifierBatch } from "../model/classifier.ts";
import type { Finetuner } from "../train/finetuner.ts";
import { ORDER_STREAM } from "../train/finetuner.ts";
import { permutation, streamKey } from "../train/random.ts";
import { encodeExample } from "./features.ts";
import type { Example } from "./glue.ts";
import type { Pooling } from "../model/head_layout.ts";

/** The finetuning recipe. */
export interface FinetuneOptions {
  epochs: number;
  /** Examples per optimizer step. */
  batch: number;
  /** The peak learning rate. */
  lr: number;
  /** The fraction of the steps over which the learning rate warms up, in [0, 1). */
  warmup: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Dropout probability in the encoder and the head. */
  dropout: number;
  /** What the head reads of the final states: the [CLS] state, or the mean over the real tokens. */
  pooling: Pooling;
  /** Seeds the head's init, the data order and the dropout masks. */
  seed: number;
  /** Steps between loss reads (a GPU round trip, which also keeps the host from running far ahead). */
  logEvery: number;
}

/**
 * The default peak learning rate for a model: the recipe's 4e-5 (BERT-base's) from a width of 768 on, 2e-4
 * below it. On the compact model after 10 minutes of pretraining (H100, 3 seeds, README "Score against
 * budget") the GLUE-5 average was 53.8 at 5e-5, 54.7 at 1e-4 and 55.1 at 2e-4, STS-B rising the most.
 */
export function defaultFinetuneLr(config: { hidden: number }): number {
  return config.hidden >= 768 ? FINETUNE_DEFAULTS.lr : NARROW_MODEL_LR;
}

/** The default peak learning rate of models narrower than 768 (see {@linkcode defaultFinetuneLr}). */
export const NARROW_MODEL_LR = 2e-4;

/** The recipe's values. */
export const FINETUNE_DEFAULTS: Readonly<FinetuneOptions> = {
  epochs: 5,
  batch: 16,
  lr: 4e-5,
  warmup: 0.1,
  beta1: 0.9,
  beta2: 0.98,
  eps: 1e-6,
  weightDecay: 0,
  dropout: 0.1,
  pooling: "cls",
  seed: 0,
  logEvery: 100,
};

/**
 * The learning rate of optimizer step `step` (0-based) of `total`: lr * step / warmupSteps during the
 * warmup (warmupSteps = floor(warmup * total)), then lr * (1 + cos(pi * progress)) / 2 down to 0 at the
 * end, as get_cosine_schedule_with_warmup (whose first step also has rate 0).
 */
export function finetuneLearningRate(
  step: number,
  total: number,
  options: { lr: number; warmup: number },
): number {
  const warmupSteps = Math.floor(options.warmup * total);
  if (step < warmupSteps) return options.lr * step / warmupSteps;
  const progress = (step - warmupSteps) / Math.max(1, total - warmupSteps);
  return options.lr * Math.max(0, (1 + Math.cos(Math.PI * progress)) / 2);
}

/** Sequence lengths to plan: 16, 32, 64 ... below `maxLength`, then `maxLength` itself. */
export function sequenceBuckets(maxLength: number): number[] {
  const buckets: number[] = [];
  for (let length = 16; length < maxLength; length *= 2) buckets.push(length);
  return [...buckets, maxLength];
}

/** An example as the model takes it: its token ids with the special tokens, and its target. */
export interface EncodedExample {
  ids: number[];
  /** The label index, or the score for regression. */
  target: number;
}

/** Tokenizes `examples` into `[CLS] a [SEP] (b [SEP])`, at most `maxLength` tokens each. */
export function encodeExamples(
  tokenizer: Pick<Tokenizer, "encode">,
  examples: readonly Example[],
  maxLength: number,
): EncodedExample[] {
  return examples.map((e) => ({ ids: encodeExample(tokenizer, e, maxLength), target: e.label }));
}

/**
 * The batch of `examples[indices]`: `rows` rows of `seq` tokens, right-padded with [PAD], rows past the
 * examples all padding; targets included when `withTargets`.
 */
export function paddedBatch(
  examples: readonly EncodedExample[],
  indices: ArrayLike<number>,
  rows: number,
  seq: number,
  withTargets: boolean,
): ClassifierBatch {
  if (indices.length > rows) throw new RangeError(`${indices.length} examples do not fit ${rows} rows`);
  const inputIds = new Uint32Array(rows * seq).fill(PAD_ID);
  const keyMask = new Uint32Array(rows * seq);
  const targets = new Float32Array(indices.length);
  for (let r = 0; r < indices.length; r++) {
    const { ids, target } = examples[indices[r]];
    if (ids.length > seq) throw new RangeError(`an example of ${ids.length} tokens does not fit seq ${seq}`);
    inputIds.set(ids, r * seq);
    keyMask.fill(1, r * seq, r * seq + ids.length);
    targets[r] = target;
  }
  return { seq, inputIds, keyMask, count: indices.length, ...(withTargets ? { targets } : {}) };
}

/** Where a run stands, for progress output. */
export interface FinetuneProgress {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Optimizer steps done, and in all. */
  step: number;
  steps: number;
  /** Mean training loss since the last report (NaN if no example): with `logEvery` 1, the step's. */
  loss: number;
  /** Mean training loss of the epoch so far. */
  epochLoss: number;
  /** True for the report that ends an epoch. */
  endOfEpoch: boolean;
  /** Steps skipped for a non-finite gradient so far. */
  skipped: number;
}

/** An optimizer step as it is queued. */
export interface FinetuneStep {
  /** 1-based, as the finetuner counts them (its dropout seeds' step number). */
  step: number;
  /** 1-based. */
  epoch: number;
  /** The batch's training examples, in row order (a view of the epoch's order). */
  examples: Uint32Array;
  /** The width the batch was padded to (a planned length). */
  seq: number;
}

/** What a run tells its caller. */
export interface FinetuneListeners {
  /** Hears every `logEvery` steps and at the end of each epoch. */
  progress(p: FinetuneProgress): void;
  /** Hears each optimizer step when it is queued. */
  step?(s: FinetuneStep): void;
}

/**
 * Finetunes from `start` (classifierLayout) on `train` with `options`, telling `listeners`. The trained
 * weights stay on the finetuner's GPU.
 */
export async function finetune(
  finetuner: Finetuner,
  start: Float32Array<ArrayBuffer>,
  train: readonly EncodedExample[],
  options: FinetuneOptions,
  listeners: FinetuneListeners,
): Promise<void> {
  const { classifier } = finetuner;
  const { epochs, batch } = options;
  if (train.length === 0) throw new RangeError("finetune: no training examples");
  if (batch !== classifier.batch) {
    throw new RangeError(`finetune: batch ${batch}, the classifier is planned for ${classifier.batch}`);
  }
  finetuner.reset(start);
  const perEpoch = Math.ceil(train.length / batch);
  const steps = perEpoch * epochs;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = permutation(streamKey(options.seed, ORDER_STREAM, epoch), train.length);
    let epochLoss = 0;
    let epochExamples = 0;
    const report = async (endOfEpoch: boolean) => {
      const stats = await finetuner.readStats();
      if (stats.examples > 0) {
        epochLoss += stats.loss * stats.examples;
        epochExamples += stats.examples;
      }
      listeners.progress({
        epoch: epoch + 1,
        epochs,
        step: finetuner.steps,
        steps,
        loss: stats.loss,
        epochLoss: epochLoss / epochExamples,
        endOfEpoch,
        skipped: stats.skippedSteps,
      });
    };
    for (let b = 0; b < perEpoch; b++) {
      const indices = order.subarray(b * batch, Math.min(train.length, (b + 1) * batch));
      let longest = 0;
      for (const i of indices) longest = Math.max(longest, train[i].ids.length);
      const seq = classifier.seqFor(longest);
      const lr = finetuneLearningRate(finetuner.steps, steps, options);
      await finetuner.step(paddedBatch(train, indices, batch, seq, true), lr, options.seed);
      listeners.step?.({ step: finetuner.steps, epoch: epoch + 1, examples: indices, seq });
      if (finetuner.steps % options.logEvery === 0 && b < perEpoch - 1) await report(false);
    }
    await report(true);
  }
}

/** The logits [examples, labels] of the finetuner's current weights, dropout off. */
export async function predict(
  finetuner: Finetuner,
  examples: readonly EncodedExample[],
): Promise<Float32Array> {
  const { classifier } = finetuner;
  const { labels, batch } = classifier;
  const gpu = classifier.gpu;
  if (examples.length === 0) return new Float32Array(0);
  // Sorted by length, so that each batch pads to little more than its examples need.
  const order = Array.from(examples.keys()).sort((a, b) => examples[a].ids.length - examples[b].ids.length);
  const rowBytes = labels * 4;
  const sorted = storageBuffer(gpu, "predicted logits", examples.length * rowBytes);
  try {
    for (let first = 0; first < order.length; first += batch) {
      const indices = order.slice(first, first + batch);
      const seq = classifier.seqFor(examples[indices[indices.length - 1]].ids.length);
      await finetuner.predict(paddedBatch(examples, indices, batch, seq, false), sorted, first * rowBytes);
    }
    await finetuner.settle();
    const logits = new Float32Array(await readBuffer(gpu, sorted, examples.length * rowBytes));
    const out = new Float32Array(examples.length * labels);
    order.forEach((example, i) => out.set(logits.subarray(i * labels, (i + 1) * labels), example * labels));
    return out;
  } finally {
    sorted.destroy();
  }
}
