/**
 * The one place that acquires the WebGPU adapter and device, from Deno's built-in WebGPU or from Dawn
 * (dawn.ts). It asks for the adapter's own buffer limits (the defaults cap storage bindings at 128 MiB,
 * far below what the crammed model needs) and for the optional features the engine can use.
 *
 * @module
 */
import { envVar } from "../args.ts";
import { DAWN_PACKAGE, loadDawn } from "./dawn.ts";

/** Which WebGPU implementation a device comes from: Deno's built-in one (wgpu) or Dawn (npm `webgpu`). */
export type GpuBackend = "builtin" | "dawn";

/** A backend to use, or `auto`: see {@linkcode requestGpu}. */
export type GpuBackendChoice = GpuBackend | "auto";

/** Shape of the f16 x f16 -> f32 subgroup matrix product a device runs: [M, K] x [K, N]. */
export interface SubgroupMatrixShape {
  /** Rows of the left matrix and of the result. */
  m: number;
  /** Columns of the right matrix and of the result. */
  n: number;
  /** The depth of one product: columns of the left matrix, rows of the right. */
  k: number;
}

/** A device together with what the engine needs to know about the adapter behind it. */
export interface Gpu {
  /** The WebGPU device every buffer and pipeline of the engine is created on. */
  device: GPUDevice;
  /** The implementation the device comes from. */
  backend: GpuBackend;
  /** Human-readable adapter name, e.g. "NVIDIA H200" or "llvmpipe". */
  name: string;
  /** True for a software adapter (Mesa llvmpipe/lavapipe): callers pick tiny shapes on it. */
  isCpu: boolean;
  /** `timestamp-query` was granted: GPU timings are available. */
  hasTimestamps: boolean;
  /** `shader-f16` was granted: kernels may store f16 (see StorageType in buffers.ts). */
  hasF16: boolean;
  /**
   * `subgroups` was granted and asked for: reductions use subgroup operations (the loader picks the
   * variant, see kernels/reduce_subgroups.wgsl).
   */
  hasSubgroups: boolean;
  /**
   * The f16 subgroup matrix product the device runs on its matrix units (tensor cores), or null. Dawn
   * only; the largest of the adapter's f16 -> f32 configurations (16x16x16 on an H200).
   */
  subgroupMatrix: SubgroupMatrixShape | null;
  /** Invocations per subgroup (the adapter's largest), or 0 when unknown. */
  subgroupSize: number;
  /** The adapter's smallest subgroup size, or 0 when unknown. */
  subgroupMinSize: number;
  /** The device's limits: the adapter's own buffer and workgroup limits. */
  limits: GPUSupportedLimits;
}

/** An error meant for the user: one line, no stack trace. Tasks print `message` and exit 1. */
export class GpuError extends Error {
  /** Always `GpuError`. */
  override name = "GpuError";
}

/** What {@linkcode requestGpu} asks the adapter for. */
export interface RequestGpuOptions {
  /** Ask for `timestamp-query` if the adapter has it (default true). */
  timestamps?: boolean;
  /**
   * `builtin` (Deno's WebGPU), `dawn`, or `auto`: Dawn when the built-in adapter is a GPU and Dawn loads
   * and offers f16 subgroup matrices, else the built-in one. Default: the environment variable `CRAM_GPU`
   * where it may be read, else `builtin`.
   */
  backend?: GpuBackendChoice;
  /**
   * Ask for `subgroups` (default true). Deno's built-in WebGPU grants it when asked although its adapter
   * does not list it; false keeps the workgroup-memory variants (what an adapter without subgroups runs).
   */
  subgroups?: boolean;
}

const NO_ADAPTER = "no WebGPU adapter found: on Linux install a Vulkan driver " +
  "(apt-get install -y mesa-vulkan-drivers for the CPU adapter, or the GPU vendor's driver); " +
  "DENO_WEBGPU_BACKEND=vulkan or gl selects the backend";

/** The backend names {@linkcode parseGpuBackend} accepts. */
export const GPU_BACKENDS: readonly GpuBackendChoice[] = ["builtin", "dawn", "auto"];

/** What the backend choices mean, as the tasks' `--gpu` help says it. */
export const GPU_BACKENDS_HELP =
  "The WebGPU implementation: builtin (Deno's own), dawn (npm webgpu, which reaches the tensor cores), " +
  "or auto: dawn on a GPU where it loads and offers f16 subgroup matrices, else builtin.";

/** `value` as a backend choice, or a GpuError naming `what` (an option or variable) and the choices. */
export function parseGpuBackend(value: string, what = "--gpu"): GpuBackendChoice {
  const choice = GPU_BACKENDS.find((b) => b === value);
  if (!choice) throw new GpuError(`${what} ${value}: expected one of ${GPU_BACKENDS.join(", ")}`);
  return choice;
}

function defaultBackend(): GpuBackendChoice {
  const value = envVar("CRAM_GPU");
  return value ? parseGpuBackend(value, "CRAM_GPU") : "builtin";
}

/**
 * Acquires an adapter and a device with the adapter's full buffer and workgroup limits, from the backend
 * that `options.backend` picks. With `auto`, a CPU adapter keeps the built-in backend without loading
 * Dawn (which refuses Mesa's older CPU adapters); a failure to load Dawn falls back to the built-in one.
 */
export async function requestGpu(options: RequestGpuOptions = {}): Promise<Gpu> {
  const backend = options.backend ?? defaultBackend();
  if (backend === "builtin") return await deviceOf(await builtinAdapter(), "builtin", options);
  if (backend === "dawn") return await dawnGpu(options);
  const builtin = await builtinAdapter();
  if (isCpuAdapter(builtin)) return await deviceOf(builtin, "builtin", options);
  try {
    const gpu = await dawnGpu(options);
    if (gpu.subgroupMatrix && gpu.hasF16) return gpu;
    gpu.device.destroy();
  } catch {
    // Dawn did not load (no network for the npm package, no addon for this platform): keep the built-in.
  }
  return await deviceOf(builtin, "builtin", options);
}

async function builtinAdapter(): Promise<GPUAdapter> {
  if (typeof navigator === "undefined" || !navigator.gpu) throw new GpuError(NO_ADAPTER);
  quietWayland();
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) throw new GpuError(NO_ADAPTER);
  return adapter;
}

async function dawnGpu(options: RequestGpuOptions): Promise<Gpu> {
  quietWayland();
  let gpu: GPU;
  try {
    gpu = await loadDawn();
  } catch (e) {
    throw new GpuError(
      `cannot load Dawn (${DAWN_PACKAGE}, or the index.js that DAWN_WEBGPU names): ` +
        (e as Error).message.split("\n")[0],
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) {
    throw new GpuError(
      "Dawn found no adapter: it needs a Vulkan GPU driver, or Mesa 25 or newer for the CPU adapter",
    );
  }
  return await deviceOf(adapter, "dawn", options);
}

/**
 * Mesa's Vulkan drivers print "error: XDG_RUNTIME_DIR is invalid or not set in the environment" (twice)
 * when that variable is unset, as on servers and in CI, although compute needs no display. Where this
 * process may set it, it gets a value that names no Wayland socket, which silences them.
 */
function quietWayland(): void {
  const name = "XDG_RUNTIME_DIR";
  if (Deno.permissions.querySync({ name: "env", variable: name }).state !== "granted") return;
  if (!Deno.env.get(name)) Deno.env.set(name, "/nonexistent-cram-runtime-dir");
}

function isCpuAdapter(adapter: GPUAdapter): boolean {
  const info = adapter.info;
  return info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader|software/i.test(adapterName(adapter));
}

function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info;
  return info.description || info.device || info.vendor || "unknown adapter";
}

/** Dawn's description of a subgroup matrix configuration (adapter.info.subgroupMatrixConfigs). */
interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** The largest f16 x f16 -> f32 configuration an adapter offers, or null. */
function subgroupMatrixOf(adapter: GPUAdapter): SubgroupMatrixShape | null {
  if (!adapter.features.has("chromium-experimental-subgroup-matrix" as GPUFeatureName)) return null;
  const configs = (adapter.info as unknown as { subgroupMatrixConfigs?: Iterable<SubgroupMatrixConfig> })
    .subgroupMatrixConfigs ?? [];
  let best: SubgroupMatrixShape | null = null;
  for (const c of configs) {
    if (c.componentType !== "f16" || c.resultComponentType !== "f32") continue;
    if (!best || c.M * c.N * c.K > best.m * best.n * best.k) best = { m: c.M, n: c.N, k: c.K };
  }
  return best;
}

async function deviceOf(adapter: GPUAdapter, backend: GpuBackend, options: RequestGpuOptions): Promise<Gpu> {
  const wanted: string[] = [];
  if ((options.timestamps ?? true) && adapter.features.has("timestamp-query")) wanted.push("timestamp-query");
  if (adapter.features.has("shader-f16")) wanted.push("shader-f16");
  const subgroupMatrix = backend === "dawn" ? subgroupMatrixOf(adapter) : null;
  if (subgroupMatrix) wanted.push("chromium-experimental-subgroup-matrix");
  // Deno's adapter leaves `subgroups` out of its list but grants it; where a request with it fails, the
  // device is made without.
  const subgroups = (options.subgroups ?? true) || subgroupMatrix !== null
    ? backend === "builtin" || adapter.features.has("subgroups")
    : false;
  const a = adapter.limits;
  const descriptor = (features: string[]): GPUDeviceDescriptor => ({
    requiredFeatures: features as GPUFeatureName[],
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
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice(descriptor(subgroups ? [...wanted, "subgroups"] : wanted));
  } catch (e) {
    if (!subgroups || backend !== "builtin") throw e;
    device = await adapter.requestDevice(descriptor(wanted));
  }
  device.addEventListener("uncapturederror", (e) => {
    console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`);
  });
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  return {
    device,
    backend,
    name: adapterName(adapter),
    isCpu: isCpuAdapter(adapter),
    hasTimestamps: device.features.has("timestamp-query"),
    hasF16: device.features.has("shader-f16"),
    // Dawn's subgroup matrices need the feature even when the reductions are asked not to use it.
    hasSubgroups: (options.subgroups ?? true) && device.features.has("subgroups"),
    subgroupMatrix,
    subgroupSize: info.subgroupMaxSize ?? 0,
    subgroupMinSize: info.subgroupMinSize ?? 0,
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
