/**
 * Storage-type conversion on the GPU (kernels/convert.wgsl): the f16 copy of the f32 master weights,
 * refreshed before each micro-batch, that the matrix products read.
 */
import type { Binding, Dispatch, Kernels } from "../../gpu/kernels.ts";
import { dispatch, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkBuffer, checkFloats, checkMultiple, flatGrid } from "./plan.ts";

const FAMILY = "convert";
const WG = 256;
const SHAPE = uniformStruct(FAMILY, "Shape", { length4: "u32" });

/** Buffers and size of {@linkcode castToF16}. */
export interface CastToF16Options {
  /** Input [length], an f32 buffer. */
  x: Binding;
  /** Output [length], an f16 buffer (see `storageBuffer`), overwritten. */
  y: Binding;
  /** Number of elements, a multiple of 4 (the kernel moves 4 at a time). */
  length: number;
}

/**
 * y = x rounded to f16: to nearest, ties to even, and values beyond f16's range to infinity, as
 * `Float16Array` rounds. One dispatch.
 */
export async function castToF16(k: Kernels, options: CastToF16Options): Promise<Dispatch[]> {
  const { x, y, length } = options;
  checkMultiple("castToF16: length", length, 4);
  checkBuffer("castToF16 x", x, length * 4);
  checkFloats("castToF16 y", y, length, "f16");
  const pipeline = await k.pipeline(FAMILY, "to_f16", { WG }, { Y_T: "f16" });
  const shape = uniformBuffer(k, SHAPE, "castToF16 shape", { length4: length / 4 });
  return [dispatch(k.gpu, pipeline, [shape, x, y], flatGrid(k.gpu, Math.ceil(length / 4 / WG)))];
}
