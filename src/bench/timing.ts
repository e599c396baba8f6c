/**
 * Timing of GPU work: back-to-back repeats of a list of dispatches in one compute pass of one submit,
 * after a warm-up, as in /work/shared/notes/wgsl-matmul-h200.md. One submit per measurement keeps the
 * host out of the figure: the GPU never waits for the CPU between repeats.
 *
 * With `timestamp-query` the time is the pass's GPU time (its begin and end timestamps); without, the
 * wall time from submit to `onSubmittedWorkDone`, which also counts one round trip (~10 ms in Deno, ~3%
 * of a 0.3 s run).
 *
 * @module
 */
import { readBuffer } from "../gpu/buffers.ts";
import { type Gpu, GpuError } from "../gpu/device.ts";
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
  /** What measured it: GPU timestamps, or the host's clock. */
  clock: "gpu" | "wall";
}

/**
 * Host seconds a warm-up batch may take while the GPU clock sees no time in it, before timing gives up (a
 * clock that does not advance, rather than work shorter than its tick).
 */
const MAX_UNSEEN_SECONDS = 1;

/**
 * Runs `repeats` copies of `dispatches` in one compute pass of one submit: the seconds they took, 0 when
 * the work fell between two ticks of the GPU's timestamp clock. Throws when the clock went backwards or
 * wrote nothing.
 */
async function drain(gpu: Gpu, dispatches: readonly Dispatch[], repeats: number): Promise<number> {
  const device = gpu.device;
  const all = Array(repeats).fill(dispatches).flat();
  const encoder = device.createCommandEncoder();
  if (!gpu.hasTimestamps) {
    const start = performance.now();
    encodeDispatches(encoder, all);
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - start) / 1000;
  }
  const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
  const resolved = device.createBuffer({
    size: 16,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  encodeDispatches(encoder, all, {
    timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
  });
  encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
  device.queue.submit([encoder.finish()]);
  const [begin, end] = new BigUint64Array(await readBuffer(gpu, resolved));
  querySet.destroy();
  resolved.destroy();
  if (end < begin || end === 0n) {
    throw new GpuError(`GPU timestamps are not a clock: begin ${begin}, end ${end}`);
  }
  return Number(end - begin) / 1e9;
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
    const started = performance.now();
    const seconds = await drain(gpu, dispatches, repeats);
    if (seconds === 0) {
      // Shorter than the clock's tick: more repeats, until the clock sees them.
      if (performance.now() - started > MAX_UNSEEN_SECONDS * 1000) {
        throw new GpuError(`the GPU clock measured no time in ${repeats} repeats`);
      }
      repeats *= 2;
      continue;
    }
    rate = repeats / seconds;
    busy += seconds;
    if (seconds < 0.1) repeats *= 2;
  } while (busy < warmupSeconds || rate === 0);
  repeats = Math.max(1, Math.round(timedSeconds * rate));
  const seconds = await drain(gpu, dispatches, repeats);
  if (seconds === 0) throw new GpuError(`the GPU clock measured no time in ${repeats} repeats`);
  return { seconds: seconds / repeats, repeats, clock: gpu.hasTimestamps ? "gpu" : "wall" };
}
