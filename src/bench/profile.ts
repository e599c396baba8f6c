/**
 * Profile of the real training step (src/train/step.ts): the GPU time of every dispatch of a step,
 * grouped by kernel, and how busy the GPU is while the trainer runs steps back to back.
 *
 * Per-dispatch times need `timestamp-query`: each of the trainer's `Dispatch` objects is recorded in its
 * own compute pass with begin and end timestamps (this profiling path only; the trainer's own steps
 * record one pass per submit). The query sets are resolved into one buffer that is read once, after the
 * profiled steps. GPU busy over wall time compares the summed dispatch times of a step with the wall time
 * per step of a run of normal steps: near 1, the GPU never waits for the CPU.
 *
 * @module
 */
import { readBuffer } from "../gpu/buffers.ts";
import type { Gpu } from "../gpu/device.ts";
import { type Dispatch, encodeDispatches, type Kernels } from "../gpu/kernels.ts";
import type { ModelConfig } from "../model/config.ts";
import { planStepBench, runSteps, type StepBench } from "./step.ts";
import type { StorageType } from "../gpu/buffers.ts";

export interface ProfileOptions {
  microBatch: number;
  /** Normal steps before anything is measured (default 3). */
  warmupSteps?: number;
  /** Normal steps timed for the wall time per step (default 10). */
  steps?: number;
  /** Steps whose dispatches are timed one by one; times are their mean (default 3). */
  profiledSteps?: number;
  seed?: number;
  /** Storage of activations and the products' weight copy (default f32). */
  precision?: StorageType;
}

/** One dispatch of the step and its mean GPU time. */
export interface DispatchTime {
  bench: "profile_dispatch";
  /** Position in the step: zero, the micro-batch's dispatches, then the update. */
  index: number;
  /** Pipeline label, `<family>.<entry point>`. */
  kernel: string;
  workgroups: number[];
  ms: number;
}

/** A kernel's dispatches in one step. */
export interface KernelProfile {
  bench: "profile_kernel";
  kernel: string;
  /** Dispatches per step. */
  count: number;
  /** GPU milliseconds per step, all its dispatches together. */
  ms: number;
  /** Fraction of the step's summed dispatch time. */
  share: number;
}

/** The step as a whole. */
export interface StepProfile {
  bench: "profile_step";
  micro_batch: number;
  /** Whether the adapter has `timestamp-query`; without it only the wall-time figures are measured. */
  timestamps: boolean;
  /** Dispatches per step. */
  dispatches: number;
  /** Normal steps in the wall-time run. */
  steps: number;
  /** Wall milliseconds per normal step. */
  wall_ms: number;
  tokens_per_s: number;
  /** Summed GPU time of the step's dispatches, in ms (null without timestamps). */
  gpu_ms: number | null;
  /** From the first dispatch's start to the last one's end in a profiled step (gaps included). */
  gpu_span_ms: number | null;
  /** gpu_ms / wall_ms: 1 when the GPU never idles during normal steps. */
  busy_over_wall: number | null;
  /** GPU ms per step by kernel family (the pipeline label's part before the dot). */
  families: Record<string, number> | null;
}

export interface Profile {
  step: StepProfile;
  /** By kernel, most time first (empty without timestamps). */
  kernels: KernelProfile[];
  /** In step order (empty without timestamps). */
  dispatches: DispatchTime[];
}

/** Queries per query set: WebGPU's maximum, an even number so a dispatch's pair shares a set. */
const MAX_QUERIES = 4096;

/** Plans the trainer for `config` at `options.microBatch` and profiles its step. */
export async function profileStep(
  k: Kernels,
  config: ModelConfig,
  options: ProfileOptions,
): Promise<Profile> {
  const { warmupSteps = 3, steps = 10, profiledSteps = 3 } = options;
  const bench = await planStepBench(k, config, options);
  const list = [...bench.trainer.zero, ...bench.trainer.model.microBatch, ...bench.trainer.update];
  await runSteps(bench, warmupSteps);
  const { seconds } = await runSteps(bench, steps);
  const wallMs = (seconds / steps) * 1000;
  const step: StepProfile = {
    bench: "profile_step",
    micro_batch: bench.microBatch,
    timestamps: k.gpu.hasTimestamps,
    dispatches: list.length,
    steps,
    wall_ms: round(wallMs),
    tokens_per_s: Math.round(bench.tokensPerStep / (seconds / steps)),
    gpu_ms: null,
    gpu_span_ms: null,
    busy_over_wall: null,
    families: null,
  };
  if (!k.gpu.hasTimestamps) return { step, kernels: [], dispatches: [] };

  const { durations, span } = await timeEachDispatch(k.gpu, bench, list, profiledSteps);
  const dispatches: DispatchTime[] = list.map((d, index) => ({
    bench: "profile_dispatch",
    index,
    kernel: d.pipeline.label,
    workgroups: [d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1],
    ms: durations[index] / 1e6,
  }));
  const kernels = groupByKernel(dispatches);
  const gpuMs = dispatches.reduce((sum, d) => sum + d.ms, 0);
  const families: Record<string, number> = {};
  for (const kernel of kernels) {
    const family = kernel.kernel.split(".")[0];
    families[family] = round((families[family] ?? 0) + kernel.ms);
  }
  for (const d of dispatches) d.ms = round(d.ms);
  return {
    step: {
      ...step,
      gpu_ms: round(gpuMs),
      gpu_span_ms: round(span / 1e6),
      busy_over_wall: round(gpuMs / wallMs),
      families,
    },
    kernels,
    dispatches,
  };
}

/**
 * Sums `dispatches` by kernel: count, milliseconds and share of the total, most time first (ties by
 * name).
 */
export function groupByKernel(dispatches: readonly Pick<DispatchTime, "kernel" | "ms">[]): KernelProfile[] {
  const total = dispatches.reduce((sum, d) => sum + d.ms, 0);
  const byKernel = new Map<string, { count: number; ms: number }>();
  for (const d of dispatches) {
    const entry = byKernel.get(d.kernel) ?? { count: 0, ms: 0 };
    entry.count++;
    entry.ms += d.ms;
    byKernel.set(d.kernel, entry);
  }
  return [...byKernel]
    .map(([kernel, { count, ms }]): KernelProfile => ({
      bench: "profile_kernel",
      kernel,
      count,
      ms: round(ms),
      share: round(total > 0 ? ms / total : 0),
    }))
    .sort((a, b) => b.ms - a.ms || a.kernel.localeCompare(b.kernel));
}

/**
 * Runs `profiledSteps` steps of `list` (the trainer's dispatches, each micro-batch written first as
 * `step` does), every dispatch in its own timestamped pass: the mean nanoseconds of each dispatch and of
 * the step's span.
 */
async function timeEachDispatch(
  gpu: Gpu,
  bench: StepBench,
  list: readonly Dispatch[],
  profiledSteps: number,
): Promise<{ durations: Float64Array; span: number }> {
  const device = gpu.device;
  const queries = 2 * list.length;
  const sets: GPUQuerySet[] = [];
  for (let first = 0; first < queries; first += MAX_QUERIES) {
    sets.push(device.createQuerySet({ type: "timestamp", count: Math.min(MAX_QUERIES, queries - first) }));
  }
  // Each step resolves its sets into its own slice; resolve offsets must be multiples of 256 bytes.
  const setBytes = sets.map((s) => Math.ceil((s.count * 8) / 256) * 256);
  const stepBytes = setBytes.reduce((a, b) => a + b, 0);
  const resolved = device.createBuffer({
    label: "profile timestamps",
    size: profiledSteps * stepBytes,
    usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
  });
  try {
    for (let s = 0; s < profiledSteps; s++) {
      const [batch] = bench.batchesOf(s);
      bench.trainer.model.writeBatch(batch, 1 / Math.max(1, batch.labelIds.length));
      const encoder = device.createCommandEncoder();
      list.forEach((d, i) => {
        const query = 2 * i;
        encodeDispatches(encoder, [d], {
          timestampWrites: {
            querySet: sets[Math.floor(query / MAX_QUERIES)],
            beginningOfPassWriteIndex: query % MAX_QUERIES,
            endOfPassWriteIndex: (query % MAX_QUERIES) + 1,
          },
        });
      });
      let offset = s * stepBytes;
      sets.forEach((set, i) => {
        encoder.resolveQuerySet(set, 0, set.count, resolved, offset);
        offset += setBytes[i];
      });
      device.queue.submit([encoder.finish()]);
    }
    const data = await readBuffer(gpu, resolved);
    const durations = new Float64Array(list.length);
    let span = 0;
    for (let s = 0; s < profiledSteps; s++) {
      // Nanoseconds since the step's first timestamp (subtracted as u64: absolute values can pass 2^53).
      const stamps = new Float64Array(queries);
      let offset = s * stepBytes;
      let first: bigint | undefined;
      let q = 0;
      sets.forEach((set, i) => {
        for (const value of new BigUint64Array(data, offset, set.count)) {
          first ??= value;
          stamps[q++] = Number(value - first);
        }
        offset += setBytes[i];
      });
      // A pass whose end reads before its begin (WebGPU allows it) counts 0.
      for (let i = 0; i < list.length; i++) {
        durations[i] += Math.max(0, stamps[2 * i + 1] - stamps[2 * i]) / profiledSteps;
      }
      span += stamps[queries - 1] / profiledSteps;
    }
    return { durations, span };
  } finally {
    resolved.destroy();
    for (const set of sets) set.destroy();
  }
}

function round(value: number): number {
  return +value.toPrecision(4);
}
