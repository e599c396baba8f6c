/** Plan-time helpers shared by the layer wrappers: launch grids and buffer size checks. */
import type { Gpu } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/device.ts";
import { type Binding, bufferOf } from "../../gpu/kernels.ts";
import { elementBytes, type StorageType, storageTypeOf } from "../../gpu/buffers.ts";

/**
 * Workgroup counts [x, y] whose product covers `workgroups`, each within the adapter's per-dimension
 * limit (65535), for kernels with more workgroups than one dimension holds: such a kernel computes its
 * flat workgroup id as `wid.y * nwg.x + wid.x` and skips ids past the end.
 */
export function flatGrid(gpu: Gpu, workgroups: number): [number, number] {
  const limit = gpu.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.max(1, Math.ceil(workgroups / limit));
  if (y > limit) throw new GpuError(`${workgroups} workgroups exceed the adapter's grid of ${limit}^2`);
  return [Math.max(1, Math.ceil(workgroups / y)), y];
}

/**
 * Throws unless `buffer` (a whole buffer or a sub-range binding) holds at least `bytes` of 4-byte
 * values (f32 or u32), naming the kernel argument `what`. An f16 buffer is refused: a kernel would read
 * its bits as f32. Arguments that may be f16 use {@linkcode checkFloats}.
 */
export function checkBuffer(what: string, buffer: Binding, bytes: number): void {
  checkType(what, buffer, "f32");
  checkSize(what, buffer, bytes);
}

/**
 * Throws unless `buffer` holds at least `count` floats of its storage type (f32 or f16), and, when
 * `type` is given, unless that is its storage type.
 */
export function checkFloats(what: string, buffer: Binding, count: number, type?: StorageType): void {
  if (type) checkType(what, buffer, type);
  checkSize(what, buffer, count * elementBytes(storageTypeOf(bufferOf(buffer))));
}

function checkType(what: string, buffer: Binding, expected: StorageType): void {
  const type = storageTypeOf(bufferOf(buffer));
  if (type !== expected) {
    throw new GpuError(`${what}: buffer ${labelOf(buffer)} stores ${type}, expected ${expected}`);
  }
}

function checkSize(what: string, buffer: Binding, bytes: number): void {
  if (buffer.size < bytes) {
    throw new GpuError(`${what}: buffer ${labelOf(buffer)} has ${buffer.size} bytes, needs ${bytes}`);
  }
}

function labelOf(binding: Binding): string {
  return bufferOf(binding).label || "(unlabelled)";
}

/**
 * Throws unless bindings `a` and `b` lie in different buffers: WebGPU refuses a dispatch that writes a
 * buffer through one binding and reads it through another.
 */
export function checkDistinct(what: string, a: Binding, b: Binding): void {
  if (bufferOf(a) === bufferOf(b)) {
    throw new GpuError(`${what}: expected two different buffers, got ${labelOf(a)} twice`);
  }
}

/** Throws unless `value` is a positive integer multiple of `multiple` (1: any positive integer). */
export function checkMultiple(what: string, value: number, multiple: number): void {
  if (!Number.isInteger(value) || value < 1 || value % multiple !== 0) {
    throw new GpuError(`${what} = ${value}, expected a positive multiple of ${multiple}`);
  }
}
