/**
 * Wall-clock timing of GPU work: back-to-back repeats of a list of dispatches in one submit, after a
 * warm-up, as in /work/shared/notes/wgsl-matmul-h200.md. One submit per measurement keeps the host out of
 * the figure: the GPU never waits for the CPU between repeats.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encodeDispatches } from "../gpu/kernels.ts";

export interface TimingOptions {
  /** Seconds of work before timing: the H200 idles at 345 MHz and needs ~0.5 s to clock up. Default 0.5. */
  warmupSeconds?: number;
  /** Seconds the timed submit should last (the repeat count is chosen from the warm-up). Default 0.3. */
  timedSeconds?: number;
}

/** The result of {@linkcode timeDispatches}. */
export interface Timing {
  /** Seconds per repeat of the dispatch list. */
  seconds: number;
  /** Repeats in the timed submit. */
  repeats: number;
}

/** Submits `repeats` copies of `dispatches` in one compute pass and waits for them: wall seconds. */
async function drain(gpu: Gpu, dispatches: readonly Dispatch[], repeats: number): Promise<number> {
  const start = performance.now();
  const encoder = gpu.device.createCommandEncoder();
  encodeDispatches(encoder, Array(repeats).fill(dispatches).flat());
  gpu.device.queue.submit([encoder.finish()]);
  await gpu.device.queue.onSubmittedWorkDone();
  return (performance.now() - start) / 1000;
}

/**
 * Times `dispatches` run back to back: warms up with growing batches until the GPU has been busy for
 * `warmupSeconds`, then times one submit of as many repeats as the last warm-up batch's rate says fill
 * `timedSeconds`.
 */
export async function timeDispatches(
  gpu: Gpu,
  dispatches: readonly Dispatch[],
  options: TimingOptions = {},
): Promise<Timing> {
  const { warmupSeconds = 0.5, timedSeconds = 0.3 } = options;
  let repeats = 1;
  let rate = 0; // repeats per second of the last warm-up batch
  let busy = 0;
  do {
    const seconds = await drain(gpu, dispatches, repeats);
    rate = repeats / seconds;
    busy += seconds;
    if (seconds < 0.1) repeats *= 2;
  } while (busy < warmupSeconds);
  repeats = Math.max(1, Math.round(timedSeconds * rate));
  const seconds = await drain(gpu, dispatches, repeats);
  return { seconds: seconds / repeats, repeats };
}
