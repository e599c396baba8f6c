/** Plan-time helpers shared by the layer wrappers: launch grids and buffer size checks. */
import type { Gpu } from "../../gpu/device.ts";
import { GpuError } from "../../gpu/device.ts";
import type { Binding } from "../../gpu/kernels.ts";

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
 * Throws unless `buffer` (a whole buffer or a sub-range binding) holds at least `bytes`, naming the
 * kernel argument `what`.
 */
export function checkBuffer(what: string, buffer: Binding, bytes: number): void {
  if (buffer.size < bytes) {
    const label = (buffer instanceof GPUBuffer ? buffer : buffer.buffer).label || "(unlabelled)";
    throw new GpuError(`${what}: buffer ${label} has ${buffer.size} bytes, needs ${bytes}`);
  }
}

/**
 * Throws unless bindings `a` and `b` lie in different buffers: WebGPU refuses a dispatch that writes a
 * buffer through one binding and reads it through another.
 */
export function checkDistinct(what: string, a: Binding, b: Binding): void {
  const bufferOf = (binding: Binding) => binding instanceof GPUBuffer ? binding : binding.buffer;
  if (bufferOf(a) === bufferOf(b)) {
    throw new GpuError(
      `${what}: expected two different buffers, got ${bufferOf(a).label || "(unlabelled)"} twice`,
    );
  }
}

/** Throws unless `value` is a positive integer multiple of `multiple` (1: any positive integer). */
export function checkMultiple(what: string, value: number, multiple: number): void {
  if (!Number.isInteger(value) || value < 1 || value % multiple !== 0) {
    throw new GpuError(`${what} = ${value}, expected a positive multiple of ${multiple}`);
  }
}
