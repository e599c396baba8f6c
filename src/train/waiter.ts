/**
 * How a host that queues optimizer steps keeps a few ahead of the GPU, for pretraining (step.ts) and
 * finetuning (finetuner.ts).
 *
 * On the built-in backend a wait for queued work resolves when the work ends, so the host waits by
 * `onSubmittedWorkDone` promises, two steps in flight ({@linkcode doneWaiter}).
 *
 * On Dawn the host never makes a wait for work that is still queued: Dawn's Node binding resolves such a
 * wait late and irregularly under Deno (src/train/pacing.ts has the figures), while one made after the
 * work ended resolves at once. {@linkcode pacedWaiter} keeps a few steps in flight, models the GPU's queue
 * from each step's GPU time (timestamp queries on its first and last pass), sleeps until the oldest step
 * should be done, and then maps a marker that the step wrote last.
 *
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { drained, emptyQueue, finished, settleTime, submitted } from "./pacing.ts";

/** Keeps the host a few steps ahead of the GPU: see the module's text. */
export interface StepWaiter {
  /** Resolves once the host may queue another step. */
  beforeSubmit(): Promise<void>;
  /** What the step's first and last compute passes ask for (timestamps, where the waiter uses them). */
  firstPass(): GPUComputePassDescriptor | undefined;
  lastPass(): GPUComputePassDescriptor | undefined;
  /** The same for a step that is one compute pass. */
  onlyPass(): GPUComputePassDescriptor | undefined;
  /** Submits a step's last commands, `encoder`, with what the waiter needs to see the step end. */
  submitLast(encoder: GPUCommandEncoder): void;
  /** Resolves when every queued step should be done, so that a read that follows does not wait long. */
  settle(): Promise<void>;
  /** The GPU time of the last step measured by timestamps, if any. */
  gpuStepMs(): number | undefined;
}

/** Waits by onSubmittedWorkDone promises made at each submit, two steps in flight. */
export function doneWaiter(gpu: Gpu): StepWaiter {
  const inFlight: Promise<void>[] = [];
  return {
    async beforeSubmit() {
      if (inFlight.length >= 2) await inFlight.shift();
    },
    firstPass: () => undefined,
    lastPass: () => undefined,
    onlyPass: () => undefined,
    submitLast(encoder) {
      gpu.device.queue.submit([encoder.finish()]);
      inFlight.push(gpu.device.queue.onSubmittedWorkDone());
    },
    settle: () => Promise.resolve(),
    gpuStepMs: () => undefined,
  };
}

/** Pretraining's steps in flight when paced: the GPU has two queued while the host waits for a third. */
const PACED_DEPTH = 3;
/** resolveQuerySet writes at offsets that are multiples of 256. */
const QUERY_RESOLVE_ALIGN = 256;

/**
 * Waits for a step only once the model of the GPU's queue says it is done, by mapping a marker that the
 * step's last command buffer writes: its begin and end timestamps where the device has them (which give
 * the model each step's GPU time), else 4 bytes of `source`. One marker per step in flight; `depth` steps
 * in flight at most (default {@linkcode PACED_DEPTH}).
 */
export function pacedWaiter(gpu: Gpu, source: GPUBuffer, depth: number = PACED_DEPTH): StepWaiter {
  if (!Number.isInteger(depth) || depth < 1) {
    throw new RangeError(`pacedWaiter: depth ${depth}, not an integer >= 1`);
  }
  const device = gpu.device;
  const markers = Array.from({ length: depth }, (_, i) =>
    device.createBuffer({
      label: `step marker ${i}`,
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
  const querySet = gpu.hasTimestamps
    ? device.createQuerySet({ label: "step timestamps", type: "timestamp", count: 2 * depth })
    : undefined;
  const resolved = querySet && device.createBuffer({
    label: "step timestamps",
    size: depth * QUERY_RESOLVE_ALIGN,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  const queue = emptyQueue();
  let measuredMs: number | undefined;
  let submittedSteps = 0;
  let doneSteps = 0;
  const sleepUntil = async (time: number) => {
    const ms = time - performance.now();
    if (ms > 1) await new Promise((resolve) => setTimeout(resolve, ms));
  };
  const waitOldest = async () => {
    await sleepUntil(settleTime(queue, "oldest"));
    const marker = markers[doneSteps % depth];
    const start = performance.now();
    await marker.mapAsync(GPUMapMode.READ);
    const now = performance.now();
    let gpuMs: number | undefined;
    if (querySet) {
      const [begin, end] = new BigUint64Array(marker.getMappedRange(), 0, 2);
      gpuMs = measuredMs = Number(end - begin) / 1e6;
    }
    marker.unmap();
    finished(queue, { now, waitedMs: now - start, gpuMs });
    doneSteps++;
  };
  const beginIndex = () => 2 * (submittedSteps % depth);
  return {
    async beforeSubmit() {
      if (submittedSteps - doneSteps >= depth) await waitOldest();
    },
    firstPass: () => querySet && { timestampWrites: { querySet, beginningOfPassWriteIndex: beginIndex() } },
    lastPass: () => querySet && { timestampWrites: { querySet, endOfPassWriteIndex: beginIndex() + 1 } },
    onlyPass: () =>
      querySet &&
      {
        timestampWrites: {
          querySet,
          beginningOfPassWriteIndex: beginIndex(),
          endOfPassWriteIndex: beginIndex() + 1,
        },
      },
    submitLast(encoder) {
      const slot = submittedSteps % depth;
      if (querySet && resolved) {
        encoder.resolveQuerySet(querySet, 2 * slot, 2, resolved, slot * QUERY_RESOLVE_ALIGN);
        encoder.copyBufferToBuffer(resolved, slot * QUERY_RESOLVE_ALIGN, markers[slot], 0, 16);
      } else {
        encoder.copyBufferToBuffer(source, 0, markers[slot], 0, 4);
      }
      device.queue.submit([encoder.finish()]);
      submitted(queue, performance.now());
      submittedSteps++;
    },
    async settle() {
      if (submittedSteps === doneSteps) return;
      await sleepUntil(settleTime(queue, "all"));
      while (doneSteps < submittedSteps) await waitOldest();
      drained(queue);
    },
    gpuStepMs: () => measuredMs,
  };
}
