/**
 * Plan-time recording of a model's dispatch lists. A model records its steps (layer ops and matrix
 * products) into one or more lists; `finish` then plans them in recording order, the matrix products
 * last-sized: every product shares one split-K scratch buffer, sized for the largest product of all
 * the lists (lists run one after another, never at once, so sharing is safe).
 *
 * @module
 */
import { elementBytes, storageBuffer, type StorageType } from "../gpu/buffers.ts";
import { GpuError } from "../gpu/device.ts";
import type { Dispatch, Kernels } from "../gpu/kernels.ts";
import { matmul, type MatmulOptions, matmulScratchBytes } from "./layers/matmul.ts";

type Step = (() => Promise<Dispatch[]>) | MatmulOptions;

/** One list of steps, filled by `run` and `product`, planned by {@linkcode Recorder.finish}. */
export class Recording {
  /** The kernels the steps are planned with. */
  readonly k: Kernels;
  readonly steps: Step[] = [];

  constructor(k: Kernels) {
    this.k = k;
  }

  /** Adds a layer op, planned later by calling `plan`. */
  run(plan: () => Promise<Dispatch[]>): void {
    this.steps.push(plan);
  }

  /** Adds a matrix product (its split-K scratch is supplied at planning). */
  product(options: MatmulOptions): void {
    this.steps.push(options);
  }
}

/** Allocates a model's buffers and collects its recordings. */
export class Recorder {
  readonly k: Kernels;
  /** Bytes of every buffer made with {@linkcode Recorder.floats}, and of the shared scratch once finished. */
  bytes = 0;
  readonly #recordings: Recording[] = [];
  /** One per buffer: what went wrong creating it, or undefined (resolved by the GPU, read in `finish`). */
  readonly #allocations: Promise<string | undefined>[] = [];
  readonly #buffers: GPUBuffer[] = [];
  /** The command-line option whose smaller value needs less memory, named in an out-of-memory error. */
  readonly #sizedBy: string;

  constructor(k: Kernels, options: { sizedBy: string }) {
    this.k = k;
    this.#sizedBy = options.sizedBy;
  }

  /** A zero-filled storage buffer of `count` f32 (or u32) values; see {@linkcode Recorder.floats}. */
  f32(label: string, count: number): GPUBuffer {
    return this.floats(label, count, "f32");
  }

  /**
   * A zero-filled storage buffer of `count` floats stored as `type`, counted in `bytes`. Created inside
   * out-of-memory and validation error scopes whose outcome `finish` reports with the buffer's name.
   */
  floats(label: string, count: number, type: StorageType): GPUBuffer {
    const bytes = count * elementBytes(type);
    this.bytes += bytes;
    const device = this.k.gpu.device;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    const buffer = storageBuffer(this.k.gpu, label, bytes, type);
    this.#buffers.push(buffer);
    const scopes = [device.popErrorScope(), device.popErrorScope()];
    this.#allocations.push(
      Promise.all(scopes).then(([invalid, oom]) =>
        oom
          ? `out of GPU memory creating buffer ${label} (${bytes} bytes, ${this.bytes} in all so far)`
          : invalid
          ? `invalid buffer ${label}: ${invalid.message}`
          : undefined
      ),
    );
    return buffer;
  }

  /** A new, empty recording. */
  recording(): Recording {
    const recording = new Recording(this.k);
    this.#recordings.push(recording);
    return recording;
  }

  /**
   * Plans every recording, in order: one dispatch list per recording. Throws a `GpuError` naming the
   * first buffer that could not be created (a smaller micro-batch is the usual remedy), after freeing
   * every buffer, so that the caller can try a smaller plan.
   */
  async finish(): Promise<Dispatch[][]> {
    const products = this.#recordings.flatMap((r) =>
      r.steps.filter((s): s is MatmulOptions => typeof s !== "function")
    );
    const scratchBytes = Math.max(0, ...products.map((o) => matmulScratchBytes(this.k, o)));
    const scratch = scratchBytes > 0 ? this.f32("matmul split-K scratch", scratchBytes / 4) : undefined;
    const lists: Dispatch[][] = [];
    for (const recording of this.#recordings) {
      const list: Dispatch[] = [];
      for (const s of recording.steps) {
        list.push(...await (typeof s === "function" ? s() : matmul(this.k, { ...s, scratch })));
      }
      lists.push(list);
    }
    const failure = (await Promise.all(this.#allocations)).find((f) => f !== undefined);
    if (failure) {
      this.destroy();
      throw new GpuError(`${failure}; try a smaller ${this.#sizedBy}`);
    }
    return lists;
  }

  /** Frees every buffer made with {@linkcode Recorder.floats}. */
  destroy(): void {
    for (const buffer of this.#buffers) buffer.destroy();
  }
}
