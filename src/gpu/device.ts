/**
 * The one place that acquires the WebGPU adapter and device. It asks for the adapter's own buffer
 * limits (the defaults cap storage bindings at 128 MiB, far below what the crammed model needs) and
 * for the optional features the engine can use.
 */

/** A device together with what the engine needs to know about the adapter behind it. */
export interface Gpu {
  device: GPUDevice;
  /** Human-readable adapter name, e.g. "NVIDIA H200" or "llvmpipe". */
  name: string;
  /** True for a software adapter (Mesa llvmpipe/lavapipe): callers pick tiny shapes on it. */
  isCpu: boolean;
  /** `timestamp-query` was granted: GPU timings are available. */
  hasTimestamps: boolean;
  /** `shader-f16` was granted: kernels may store f16 (see StorageType in buffers.ts). */
  hasF16: boolean;
  limits: GPUSupportedLimits;
}

/** An error meant for the user: one line, no stack trace. Tasks print `message` and exit 1. */
export class GpuError extends Error {
  override name = "GpuError";
}

export interface RequestGpuOptions {
  /** Ask for `timestamp-query` if the adapter has it (default true). */
  timestamps?: boolean;
}

const NO_ADAPTER = "no WebGPU adapter found: on Linux install a Vulkan driver " +
  "(apt-get install -y mesa-vulkan-drivers for the CPU adapter, or the GPU vendor's driver); " +
  "DENO_WEBGPU_BACKEND=vulkan or gl selects the backend";

/** Acquires the adapter and a device with the adapter's full buffer and workgroup limits. */
export async function requestGpu(options: RequestGpuOptions = {}): Promise<Gpu> {
  if (typeof navigator === "undefined" || !navigator.gpu) throw new GpuError(NO_ADAPTER);
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuError(NO_ADAPTER);
  const wanted: GPUFeatureName[] = [];
  if ((options.timestamps ?? true) && adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  if (adapter.features.has("shader-f16")) wanted.push("shader-f16");
  const a = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: wanted,
    requiredLimits: {
      maxBufferSize: a.maxBufferSize,
      maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
      maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: a.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: a.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
    },
  });
  device.addEventListener("uncapturederror", (e) => {
    console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`);
  });
  const info = adapter.info;
  const name = info.description || info.device || info.vendor || "unknown adapter";
  return {
    device,
    name,
    isCpu: info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|software/i.test(name),
    hasTimestamps: device.features.has("timestamp-query"),
    hasF16: device.features.has("shader-f16"),
    limits: device.limits,
  };
}

/**
 * Runs `create` inside out-of-memory and validation error scopes and turns a failure into a
 * `GpuError` that names `what` (a buffer or a kernel), instead of an asynchronous console warning.
 */
export async function checked<T>(gpu: Gpu, what: string, create: () => T): Promise<T> {
  gpu.device.pushErrorScope("out-of-memory");
  gpu.device.pushErrorScope("validation");
  const value = create();
  const validation = await gpu.device.popErrorScope();
  const oom = await gpu.device.popErrorScope();
  if (oom) throw new GpuError(`out of GPU memory while creating ${what}: ${oom.message}`);
  if (validation) throw new GpuError(`invalid ${what}: ${validation.message}`);
  return value;
}
