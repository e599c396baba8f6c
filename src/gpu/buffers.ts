/**
 * Buffer helpers. Every buffer of a model/batch shape is created once, at plan time, with these;
 * nothing here is meant to run inside a training step. Kernel uniforms are made by `uniformBuffer`
 * (src/gpu/kernels.ts).
 */
import type { Gpu } from "./device.ts";
import { GpuError } from "./device.ts";

const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** A typed array the GPU understands as storage (f32, f16, u32, i32, or raw bytes). */
export type HostArray =
  | Float32Array<ArrayBuffer>
  | Float16Array<ArrayBuffer>
  | Uint32Array<ArrayBuffer>
  | Int32Array<ArrayBuffer>
  | Uint16Array<ArrayBuffer>
  | Uint8Array<ArrayBuffer>;

/**
 * How a buffer's floats are stored: f32, or f16 (half the bytes; the kernels compute in f32 and round on
 * store). Integer buffers count as f32: their elements are 4 bytes too.
 */
export type StorageType = "f32" | "f16";

const storageTypes = new WeakMap<GPUBuffer, StorageType>();

/** The storage type `buffer` was created with (f32 unless made with "f16"). */
export function storageTypeOf(buffer: GPUBuffer): StorageType {
  return storageTypes.get(buffer) ?? "f32";
}

/** Bytes of one element of `type`. */
export function elementBytes(type: StorageType): number {
  return type === "f16" ? 2 : 4;
}

/**
 * Creates a zero-filled storage buffer of `bytes` (rounded up to 4), labelled for error messages, whose
 * floats are stored as `type` (f16 needs the adapter's shader-f16 feature, see Gpu.hasF16).
 */
export function storageBuffer(gpu: Gpu, label: string, bytes: number, type: StorageType = "f32"): GPUBuffer {
  if (type === "f16" && !gpu.hasF16) {
    throw new GpuError(`buffer ${label}: f16 storage needs the shader-f16 feature, which ${gpu.name} lacks`);
  }
  const size = Math.max(4, Math.ceil(bytes / 4) * 4);
  if (size > gpu.limits.maxStorageBufferBindingSize) {
    throw new GpuError(
      `buffer ${label} needs ${size} bytes, more than this adapter binds (${gpu.limits.maxStorageBufferBindingSize})`,
    );
  }
  const buffer = gpu.device.createBuffer({ label, size, usage: STORAGE });
  if (type === "f16") storageTypes.set(buffer, type);
  return buffer;
}

/** Creates a storage buffer holding `data` (stored as f16 when `data` is a Float16Array). */
export function uploadBuffer(gpu: Gpu, label: string, data: HostArray): GPUBuffer {
  const buffer = storageBuffer(gpu, label, data.byteLength, data instanceof Float16Array ? "f16" : "f32");
  writeBuffer(gpu, buffer, data);
  return buffer;
}

/** Copies `data` into `buffer` at `offsetBytes` (padded to a multiple of 4 bytes as WebGPU requires). */
export function writeBuffer(gpu: Gpu, buffer: GPUBuffer, data: HostArray, offsetBytes = 0): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    gpu.device.queue.writeBuffer(buffer, offsetBytes, bytes);
  } else {
    const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
    padded.set(bytes);
    gpu.device.queue.writeBuffer(buffer, offsetBytes, padded);
  }
}

/**
 * Reads `bytes` of `buffer` back to the host. Costs a full GPU round trip (about 10 ms in Deno):
 * for tests, checkpoints and the loss read every N steps, never per step.
 */
export async function readBuffer(
  gpu: Gpu,
  buffer: GPUBuffer,
  bytes = buffer.size,
  offsetBytes = 0,
): Promise<ArrayBuffer> {
  const size = Math.ceil(bytes / 4) * 4;
  const staging = gpu.device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = gpu.device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, offsetBytes, staging, 0, size);
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const copy = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return copy;
}

/**
 * Reads the first `bytes` of each buffer in one GPU round trip (one staging buffer, one map): for the
 * few small buffers a host reads together every N steps.
 */
export async function readBuffers(
  gpu: Gpu,
  parts: readonly { buffer: GPUBuffer; bytes: number }[],
): Promise<ArrayBuffer[]> {
  const sizes = parts.map((p) => Math.ceil(p.bytes / 4) * 4);
  const staging = gpu.device.createBuffer({
    size: Math.max(4, sizes.reduce((a, b) => a + b, 0)),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = gpu.device.createCommandEncoder();
  let offset = 0;
  parts.forEach((p, i) => {
    encoder.copyBufferToBuffer(p.buffer, 0, staging, offset, sizes[i]);
    offset += sizes[i];
  });
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = staging.getMappedRange();
  offset = 0;
  const copies = parts.map((p, i) => {
    const copy = mapped.slice(offset, offset + p.bytes);
    offset += sizes[i];
    return copy;
  });
  staging.unmap();
  staging.destroy();
  return copies;
}

/** Reads a buffer of f32 values. */
export async function readF32(gpu: Gpu, buffer: GPUBuffer, count?: number): Promise<Float32Array> {
  return new Float32Array(await readBuffer(gpu, buffer, count === undefined ? buffer.size : count * 4));
}

/** Reads a buffer of floats stored as its storage type (f32 or f16), widened to f32. */
export async function readFloats(gpu: Gpu, buffer: GPUBuffer, count?: number): Promise<Float32Array> {
  if (storageTypeOf(buffer) === "f32") return await readF32(gpu, buffer, count);
  const bytes = count === undefined ? buffer.size : count * 2;
  return Float32Array.from(new Float16Array(await readBuffer(gpu, buffer, bytes)));
}

/** Reads a buffer of u32 values. */
export async function readU32(gpu: Gpu, buffer: GPUBuffer, count?: number): Promise<Uint32Array> {
  return new Uint32Array(await readBuffer(gpu, buffer, count === undefined ? buffer.size : count * 4));
}
