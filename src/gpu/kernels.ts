/**
 * Kernel dispatch: WGSL sources from `kernels/` (one file per family of ops), a pipeline cache keyed by
 * file, entry point and override constants, bind groups made once, and dispatches recorded into a
 * single compute pass.
 *
 * Sources are read relative to this module, so `deno compile --include kernels` embeds them.
 */
import type { Gpu } from "./device.ts";
import { GpuError } from "./device.ts";
import { type StorageType, storageTypeOf } from "./buffers.ts";

/** The folder of the WGSL sources shipped with cram. */
export const KERNELS_DIR: URL = new URL("../../kernels/", import.meta.url);

/** The WGSL text of `<dir>/<family>.wgsl`. */
export function kernelSource(family: string, dir: URL = KERNELS_DIR): string {
  const url = new URL(`${family}.wgsl`, dir);
  try {
    return Deno.readTextFileSync(url);
  } catch (e) {
    throw new GpuError(`cannot read kernel source ${url.pathname}: ${(e as Error).message}`);
  }
}

/** WGSL `override` constants of a pipeline, e.g. workgroup sizes or tile shapes. */
export type Constants = Record<string, number>;

/**
 * Storage types of a kernel's buffers, by the name of the WGSL alias the source declares as
 * `alias NAME = f32;` (e.g. `{ Y_T: "f16" }`). WGSL has no type overrides, so a module is compiled per
 * set of types: the named aliases are rewritten, and `enable f16;` is added when one is f16.
 */
export type StorageTypes = Record<string, StorageType>;

/** The storage types of named bindings, for {@linkcode Kernels.pipeline}: `{ Y_T: y }` -> `{ Y_T: "f16" }`. */
export function storageTypes(bindings: Record<string, Binding>): StorageTypes {
  return Object.fromEntries(
    Object.entries(bindings).map((
      [alias, b],
    ) => [alias, storageTypeOf(b instanceof GPUBuffer ? b : b.buffer)]),
  );
}

/** The source of `family` with `types` applied to its aliases (see {@linkcode StorageTypes}). */
function typedSource(family: string, source: string, types: StorageTypes): string {
  let typed = source;
  for (const [alias, type] of Object.entries(types)) {
    const declaration = new RegExp(`^alias ${alias} = f32;$`, "m");
    if (!declaration.test(typed)) {
      throw new GpuError(`${family}.wgsl declares no \`alias ${alias} = f32;\` to store as ${type}`);
    }
    typed = typed.replace(declaration, `alias ${alias} = ${type};`);
  }
  // On the first line, so that compiler messages keep the file's line numbers.
  return Object.values(types).includes("f16") ? `enable f16; ${typed}` : typed;
}

/** Compiles and caches compute pipelines for one device. */
export class Kernels {
  /** The device these pipelines belong to. */
  readonly gpu: Gpu;
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();
  readonly #dir: URL;

  /** `dir` is where the `.wgsl` files are read from (default: the shipped `kernels/`). */
  constructor(gpu: Gpu, dir: URL = KERNELS_DIR) {
    this.gpu = gpu;
    this.#dir = dir;
  }

  /**
   * The pipeline for entry point `entry` of `kernels/<family>.wgsl` with `constants`, its buffers stored
   * as `types` say (default all f32). A WGSL error becomes a `GpuError` that names the file and entry point.
   */
  pipeline(
    family: string,
    entry: string,
    constants: Constants = {},
    types: StorageTypes = {},
  ): Promise<GPUComputePipeline> {
    // f32 is every alias's declared type: leaving those out keys all-f32 pipelines alike.
    const f16 = Object.fromEntries(Object.entries(types).filter(([, type]) => type === "f16").sort());
    const key = `${family}:${entry}:${JSON.stringify(Object.entries(constants).sort())}:${
      JSON.stringify(f16)
    }`;
    let pipeline = this.#pipelines.get(key);
    if (!pipeline) {
      pipeline = this.#compile(family, entry, constants, f16);
      this.#pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  async #compile(
    family: string,
    entry: string,
    constants: Constants,
    types: StorageTypes,
  ): Promise<GPUComputePipeline> {
    const device = this.gpu.device;
    const moduleKey = `${family}:${JSON.stringify(types)}`;
    let module = this.#modules.get(moduleKey);
    if (!module) {
      if (Object.keys(types).length > 0 && !this.gpu.hasF16) {
        throw new GpuError(
          `kernel ${family}.${entry}: f16 storage needs shader-f16, which ${this.gpu.name} lacks`,
        );
      }
      const code = typedSource(family, kernelSource(family, this.#dir), types);
      module = device.createShaderModule({ label: family, code });
      const info = await module.getCompilationInfo();
      const error = info.messages.find((m) => m.type === "error");
      if (error) throw new GpuError(`${family}.wgsl:${error.lineNum}:${error.linePos}: ${error.message}`);
      this.#modules.set(moduleKey, module);
    }
    try {
      return await device.createComputePipelineAsync({
        label: `${family}.${entry}`,
        layout: "auto",
        compute: { module, entryPoint: entry, constants },
      });
    } catch (e) {
      throw new GpuError(`kernel ${family}.${entry}: ${(e as Error).message}`);
    }
  }
}

/** A buffer binding, or a sub-range of a buffer (offset must be a multiple of 256 bytes). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset: number; size: number };

/**
 * A bind group for group 0 of `pipeline`: `bindings[i]` goes to `@binding(i)`. Made once at plan
 * time and reused by every step.
 */
export function bindGroup(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  bindings: readonly Binding[],
): GPUBindGroup {
  return gpu.device.createBindGroup({
    label: pipeline.label,
    layout: pipeline.getBindGroupLayout(0),
    entries: bindings.map((b, i) => ({ binding: i, resource: b instanceof GPUBuffer ? { buffer: b } : b })),
  });
}

/** One recorded kernel launch. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  /** Workgroup counts in x, y, z. */
  workgroups: readonly [number, number?, number?];
}

/** Creates a dispatch with its bind group (plan time). */
export function dispatch(
  gpu: Gpu,
  pipeline: GPUComputePipeline,
  bindings: readonly Binding[],
  workgroups: readonly [number, number?, number?],
): Dispatch {
  const limit = gpu.limits.maxComputeWorkgroupsPerDimension;
  if (workgroups.some((n) => n !== undefined && (n < 1 || n > limit || !Number.isInteger(n)))) {
    throw new GpuError(`kernel ${pipeline.label}: workgroup count ${workgroups} outside 1..${limit}`);
  }
  return { pipeline, bindGroup: bindGroup(gpu, pipeline, bindings), workgroups };
}

/**
 * Records `dispatches` in order into one compute pass of `encoder`; `descriptor` may ask for
 * timestamps (benchmarks and profiles).
 */
export function encodeDispatches(
  encoder: GPUCommandEncoder,
  dispatches: readonly Dispatch[],
  descriptor?: GPUComputePassDescriptor,
): void {
  const pass = encoder.beginComputePass(descriptor);
  for (const d of dispatches) {
    pass.setPipeline(d.pipeline);
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
  }
  pass.end();
}

/** Records and submits the lists of dispatches as one command buffer, a compute pass each (no wait). */
export function submitDispatches(gpu: Gpu, ...lists: readonly (readonly Dispatch[])[]): void {
  const encoder = gpu.device.createCommandEncoder();
  for (const dispatches of lists) encodeDispatches(encoder, dispatches);
  gpu.device.queue.submit([encoder.finish()]);
}
