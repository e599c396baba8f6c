/**
 * Storage-type conversion on the GPU (kernels/convert.wgsl): the f16 copy of the f32 master weights,
 * refreshed before each micro-batch, that the matrix products read; and a plain f32 copy, the bandwidth
 * reference of the kernel benchmark.
 */
import type { Binding, Dispatch, Kernels } from "../../gpu/kernels.ts";
import { dispatch, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import type { BenchShape, KernelCase } from "../../bench/case.ts";
import { f32Bytes } from "../../bench/case.ts";
import { checkFloats, checkMultiple, flatGrid } from "./plan.ts";

const FAMILY = "convert";
const WG = 256;
const SHAPE = uniformStruct(FAMILY, "Shape", { length4: "u32" });

/** Buffers and size of {@linkcode castToF16} and {@linkcode copyF32}. */
export interface ConvertOptions {
  /** Input [length], an f32 buffer. */
  x: Binding;
  /** Output [length], overwritten: an f16 buffer (see `storageBuffer`) for castToF16, f32 for copyF32. */
  y: Binding;
  /** Number of elements, a multiple of 4 (the kernel moves 4 at a time). */
  length: number;
}

/**
 * y = x rounded to f16: to nearest, ties to even, and values beyond f16's range to infinity, as
 * `Float16Array` rounds. One dispatch.
 */
export function castToF16(k: Kernels, options: ConvertOptions): Promise<Dispatch[]> {
  return convert(k, "castToF16", "f16", options);
}

/** y = x, both f32: the copy whose rate `deno task bench --kernels` compares every kernel with. */
export function copyF32(k: Kernels, options: ConvertOptions): Promise<Dispatch[]> {
  return convert(k, "copyF32", "f32", options);
}

async function convert(
  k: Kernels,
  what: string,
  type: "f16" | "f32",
  options: ConvertOptions,
): Promise<Dispatch[]> {
  const { x, y, length } = options;
  checkMultiple(`${what}: length`, length, 4);
  checkFloats(`${what} x`, x, length, "f32");
  checkFloats(`${what} y`, y, length, type);
  const pipeline = await k.pipeline(FAMILY, "convert", { WG }, { Y_T: type });
  const shape = uniformBuffer(k, SHAPE, `${what} shape`, { length4: length / 4 });
  return [dispatch(k.gpu, pipeline, [shape, x, y], flatGrid(k.gpu, Math.ceil(length / 4 / WG)))];
}

/**
 * The bandwidth reference: an f32 copy of the largest activation of a step (tokens x intermediate).
 * Bytes: the source read and the copy written.
 */
export function convertBenchCases(shape: BenchShape): KernelCase[] {
  const n = shape.microBatch * shape.config.maxSeqLen * shape.config.intermediate;
  return [{
    name: "copy",
    shape: `${shape.microBatch * shape.config.maxSeqLen}x${shape.config.intermediate}`,
    bytes: 2 * f32Bytes(n),
    flops: null,
    plan: (k, b) => copyF32(k, { x: b.random("x", n), y: b.zeros("y", n), length: n }),
  }];
}
