/**
 * Inverted dropout for finetuning (kernels/dropout.wgsl). The mask is a hash of (seed, element index),
 * identical to the reference's `dropoutKeep`, so it is never stored: the backward recomputes it from the
 * same seed. Seeds live in a GPU buffer (one u32 per dropout site) that the host rewrites every step, so
 * each step draws a new mask without re-planning. The forward can add a residual in the same pass
 * (a block's dropped output joining the residual stream); the backward is the plain map either way.
 */
import { GpuError } from "../../gpu/device.ts";
import { dispatch, uniformBuffer } from "../../gpu/kernels.ts";
import type { Dispatch, Kernels } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkBuffer, checkDistinct, checkMultiple, flatGrid } from "./plan.ts";
import { type BenchShape, benchTokens, f32Bytes as f32, type KernelCase } from "../../bench/case.ts";

/** One dropout site. */
export interface DropoutSite {
  /** Elements of the tensor, a multiple of 4. */
  count: number;
  /** Drop probability, in [0, 1). */
  p: number;
  /** u32 seeds of the step's dropout sites. */
  seeds: GPUBuffer;
  /** This site's index in `seeds`. */
  seedIndex: number;
}

export interface DropoutForwardOptions extends DropoutSite {
  /** [count] f32. */
  x: GPUBuffer;
  /** [count] f32, written: x * keep / (1 - p), plus `residual` if given. Not `x` or `residual`. */
  y: GPUBuffer;
  /** [count] f32 added to the dropped x. */
  residual?: GPUBuffer;
}

export interface DropoutBackwardOptions extends DropoutSite {
  /** [count] f32: gradient of the forward's y. */
  dy: GPUBuffer;
  /** [count] f32, written: dy * keep / (1 - p), with the mask of the forward that used the same seed. */
  dx: GPUBuffer;
}

const WG = 256;
const UNIFORMS = uniformStruct("dropout", "Uniforms", {
  count4: "u32",
  threshold: "u32",
  scale: "f32",
  seedIndex: "u32",
});

/**
 * Throws unless a dropout site's probability, seed index and seeds buffer are usable, naming `what`
 * (shared with the attention's probability dropout).
 */
export function checkDropoutSite(what: string, site: Pick<DropoutSite, "p" | "seeds" | "seedIndex">): void {
  const { p, seeds, seedIndex } = site;
  if (!(p >= 0 && p < 1)) throw new GpuError(`${what} p = ${p}, expected a probability in [0, 1)`);
  if (!Number.isInteger(seedIndex) || seedIndex < 0) {
    throw new GpuError(`${what} seedIndex = ${seedIndex}, expected a non-negative integer`);
  }
  checkBuffer(`${what} seeds`, seeds, (seedIndex + 1) * 4);
}

/** Records y = x * keep / (1 - p), or y = residual + x * keep / (1 - p). */
export async function dropoutForward(k: Kernels, args: DropoutForwardOptions): Promise<Dispatch[]> {
  if (args.residual) {
    checkBuffer("dropout forward residual", args.residual, args.count * 4);
    checkDistinct("dropout forward residual and y", args.residual, args.y);
  }
  return await planDropout(k, args, args.x, args.y, "forward", args.residual);
}

/** Records dx = dy * keep / (1 - p): the forward's map, with its mask recomputed from the seed. */
export function dropoutBackward(k: Kernels, args: DropoutBackwardOptions): Promise<Dispatch[]> {
  return planDropout(k, args, args.dy, args.dx, "backward");
}

/** The integer form of the reference's keep test: (u >>> 8) / 2^24 >= p iff (u >>> 8) >= ceil(p * 2^24). */
export function dropoutThreshold(p: number): number {
  return Math.ceil(p * 2 ** 24);
}

async function planDropout(
  k: Kernels,
  site: DropoutSite,
  input: GPUBuffer,
  output: GPUBuffer,
  direction: string,
  residual?: GPUBuffer,
): Promise<Dispatch[]> {
  const gpu = k.gpu;
  const { count, p, seedIndex } = site;
  checkMultiple("dropout count", count, 4);
  checkDropoutSite("dropout", site);
  checkBuffer(`dropout ${direction} input`, input, count * 4);
  checkBuffer(`dropout ${direction} output`, output, count * 4);
  checkDistinct(`dropout ${direction} input and output`, input, output);
  const uniforms = uniformBuffer(k, UNIFORMS, `dropout.${direction} uniforms`, {
    count4: count / 4,
    threshold: dropoutThreshold(p),
    scale: 1 / (1 - p),
    seedIndex,
  });
  const pipeline = await k.pipeline("dropout", residual ? "dropout_add" : "dropout", { WG });
  const bindings = [uniforms, site.seeds, input, output, ...(residual ? [residual] : [])];
  return [dispatch(gpu, pipeline, bindings, flatGrid(gpu, Math.ceil(count / 4 / WG)))];
}

/**
 * Dropout's benchmark case (timed by src/bench/kernels.ts): one site over the hidden states, as finetuning
 * runs it (the backward is the same kernel).
 */
export function dropoutBenchCases(shape: BenchShape): KernelCase[] {
  const H = shape.config.hidden;
  const N = benchTokens(shape);
  return [{
    name: "dropout",
    shape: `${N}x${H}, finetuning only`,
    // input read, output written.
    bytes: f32(2 * N * H),
    flops: null,
    plan: (k, b) =>
      dropoutForward(k, {
        count: N * H,
        p: 0.1,
        seeds: b.upload("seeds", Uint32Array.of(12345)),
        seedIndex: 0,
        x: b.random("x", N * H),
        y: b.zeros("y", N * H),
      }),
  }];
}
