/**
 * Storage-type conversion on the GPU (kernels/convert.wgsl): the f16 copy of the f32 master weights,
 * refreshed before each micro-batch, that the matrix products read.
 */
import { paramBuffer, storageTypeOf } from "../../gpu/buffers.ts";
import { GpuError } from "../../gpu/device.ts";
import type { Binding, Dispatch, Kernels } from "../../gpu/kernels.ts";
import { dispatch, storageTypes } from "../../gpu/kernels.ts";
import { checkBuffer, checkFloats, checkMultiple, flatGrid } from "./plan.ts";

const FAMILY = "convert";
const WG = 256;

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
  const out = y instanceof GPUBuffer ? y : y.buffer;
  if (storageTypeOf(out) !== "f16") {
    throw new GpuError(
      `castToF16 y: buffer ${out.label || "(unlabelled)"} stores ${storageTypeOf(out)}, expected f16`,
    );
  }
  checkFloats("castToF16 y", y, length);
  const types = storageTypes({ X_T: x, Y_T: y });
  const pipeline = await k.pipeline(FAMILY, "convert", { WG }, types);
  const shape = paramBuffer(k.gpu, "castToF16 shape", [length / 4]);
  return [dispatch(k.gpu, pipeline, [shape, x, y], flatGrid(k.gpu, Math.ceil(length / 4 / WG)))];
}
