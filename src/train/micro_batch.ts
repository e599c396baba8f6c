/**
 * The micro-batch of a pretraining run: a default by adapter, halved while the trainer does not fit in GPU
 * memory.
 *
 * @module
 */
import { describe } from "../data/errors.ts";

/**
 * Micro-batch on a GPU when none is given: on an H200, `deno task bench --step --micro-batch 64,128,256`
 * (crammed, f32, the engine as of d0edbc0) ran at 33.8k, 34.7k and 35.1k tokens/s, within 4% of each
 * other, so 128 keeps memory low at almost no cost.
 */
export const GPU_MICRO_BATCH = 128;
/** Micro-batch on a CPU adapter when none is given: small enough for a step of a few seconds. */
export const CPU_MICRO_BATCH = 8;

/** The micro-batch when none is given: by adapter, and no more than the batch. */
export function defaultMicroBatch(adapter: { isCpu: boolean }, batch: number): number {
  return Math.min(batch, adapter.isCpu ? CPU_MICRO_BATCH : GPU_MICRO_BATCH);
}

/** What {@linkcode planFittingMicroBatch} starts from. */
export interface FittingOptions {
  /** The micro-batch to try first; it divides the target batch, and so does each half of it. */
  microBatch: number;
  /** Whether the micro-batch was the default (only a default is halved; one the user gave is kept). */
  halve: boolean;
  /** Told of each halving. */
  onHalve?: (from: number, to: number) => void;
}

/**
 * Plans with the largest micro-batch that fits: `plan(microBatch)`, and while that fails for lack of GPU
 * memory and the micro-batch is a default, again with half of it while it is even. Any other failure is
 * thrown as it is.
 */
export async function planFittingMicroBatch<T>(
  plan: (microBatch: number) => Promise<T>,
  options: FittingOptions,
): Promise<{ planned: T; microBatch: number }> {
  let microBatch = options.microBatch;
  while (true) {
    try {
      return { planned: await plan(microBatch), microBatch };
    } catch (e) {
      const half = microBatch / 2;
      const outOfMemory = /out of GPU memory/.test(describe(e));
      if (!outOfMemory || !options.halve || !Number.isInteger(half)) throw e;
      options.onHalve?.(microBatch, half);
      microBatch = half;
    }
  }
}
