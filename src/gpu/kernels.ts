/**
 * Kernel dispatch: WGSL sources from `kernels/` (one file per family of ops), a pipeline cache keyed by
 * file, entry point and override constants, bind groups made once, and dispatches recorded into a
 * single compute pass.
 *
 * Sources are read relative to this module, so `deno compile --include kernels` embeds them.
 *
 * Uniforms go by name: a wrapper declares its kernel's uniform struct once (`uniformStruct`, see
 * src/gpu/uniforms.ts) and fills it with `uniformBuffer`, which checks the declaration against the struct
 * in the WGSL the loader reads (once per loader and declaration) and packs the values at its offsets;
 * `dispatch` then checks that each such buffer goes to a `var<uniform>` of its struct.
 */
import type { Gpu } from "./device.ts";
import { GpuError } from "./device.ts";
import { type StorageType, storageTypeOf } from "./buffers.ts";
import {
  packUniforms,
  type UniformLayout,
  uniformLayout,
  type UniformStruct,
  type UniformValues,
  type WgslField,
  wgslStructs,
  wgslUniformBindings,
} from "./uniforms.ts";

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
    ) => [alias, storageTypeOf(bufferOf(b))]),
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
  return typed;
}

/** What a module's WGSL uses that needs an `enable` line or a device feature. */
export interface ShaderNeeds {
  f16: boolean;
  subgroups: boolean;
  subgroupMatrix: boolean;
}

/** What `code` uses, comments aside: f16 types or literals, subgroup builtins, subgroup matrices. */
export function shaderNeeds(code: string): ShaderNeeds {
  const text = code.replace(/\/\*[^]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
  const subgroupMatrix = /\bsubgroup_matrix_|\bsubgroupMatrix\w*\s*[<(]/.test(text);
  return {
    f16: subgroupMatrix || /\bf16\b|\b(vec[234]|mat[234]x[234])h\b|[\d.]h\b/.test(text),
    subgroups: subgroupMatrix || /\bsubgroup[A-Z]\w*\s*\(|@builtin\(\s*subgroup_/.test(text),
    subgroupMatrix,
  };
}

/** A WGSL file the loader puts before a family's source (`name` without `.wgsl`). */
export interface SharedSource {
  name: string;
  text: string;
}

/** Lines `first` to `first + count - 1` (1-based) of a built module came from `file`. */
export interface SourcePart {
  file: string;
  first: number;
  count: number;
}

/**
 * The complete WGSL of a module: the `enable` lines its backend needs, then the `shared` files (the
 * prelude, kernels/prelude.wgsl, and the reduction variant the family calls), then `source`, and where
 * each part's lines are, to map compiler messages back to their files. The backends differ here and only
 * here: Dawn's Tint wants `enable f16;`, `enable subgroups;` and the subgroup-matrix extension declared;
 * Deno's naga takes `enable f16;` but rejects `enable subgroups;` (its subgroup builtins need no
 * declaration). Devices with subgroup matrices also get their shape as the constants SUBGROUP_MATRIX_M, _N
 * and _K, and the subgroup size as SUBGROUP_SIZE.
 */
export function moduleSource(
  gpu: Gpu,
  family: string,
  source: string,
  shared: readonly SharedSource[],
): { code: string; parts: SourcePart[] } {
  const needs = shaderNeeds([...shared.map((f) => f.text), source].join("\n"));
  if (needs.f16 && !gpu.hasF16) {
    throw new GpuError(`${family}.wgsl: f16 needs shader-f16, which ${gpu.name} lacks`);
  }
  if (needs.subgroupMatrix && !gpu.subgroupMatrix) {
    throw new GpuError(
      `${family}.wgsl: subgroup matrices need Dawn (--gpu dawn) on an adapter that has them; ${gpu.name} ` +
        `(${gpu.backend}) has none`,
    );
  }
  const lines: string[] = [];
  if (needs.f16) lines.push("enable f16;");
  if (gpu.backend === "dawn" && needs.subgroups) lines.push("enable subgroups;");
  if (needs.subgroupMatrix) {
    lines.push(
      "enable chromium_experimental_subgroup_matrix;",
      // Tile offsets depend on subgroup_id, which Tint cannot prove uniform across a subgroup.
      "diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);",
    );
  }
  const shape = gpu.subgroupMatrix;
  if (shape) {
    lines.push(
      `const SUBGROUP_MATRIX_M: u32 = ${shape.m}u;`,
      `const SUBGROUP_MATRIX_N: u32 = ${shape.n}u;`,
      `const SUBGROUP_MATRIX_K: u32 = ${shape.k}u;`,
      `const SUBGROUP_SIZE: u32 = ${gpu.subgroupSize}u;`,
    );
  }
  const parts: SourcePart[] = [{
    file: `${family}.wgsl (the loader's enable lines)`,
    first: 1,
    count: lines.length,
  }];
  const texts = [...lines];
  for (const f of shared) {
    const text = f.text.trimEnd();
    const count = text.split("\n").length;
    parts.push({ file: `${f.name}.wgsl`, first: texts.length + 1, count });
    texts.push(...text.split("\n"));
  }
  parts.push({ file: `${family}.wgsl`, first: texts.length + 1, count: Infinity });
  return { code: [...texts, source].join("\n"), parts };
}

/** `file:line:column` of a compiler message at `lineNum` of a module built by {@linkcode moduleSource}. */
function messagePlace(lineNum: number, linePos: number, parts: readonly SourcePart[]): string {
  const part = parts.findLast((p) => p.first <= lineNum) ?? parts[0];
  return `${part.file}:${lineNum - part.first + 1}:${linePos}`;
}

/**
 * The shared reduction files a family's source calls into, each in the variant for the device: over a
 * workgroup (`reduce_*`: workgroup_sum, workgroup_max) and over the lanes of a row (`lanes_*`:
 * lanes_reduce), with subgroup operations where the device has them, else in workgroup memory.
 */
function reductionFiles(source: string, gpu: Gpu): string[] {
  const code = source.replace(/\/\/.*$/gm, "");
  const variant = gpu.hasSubgroups ? "subgroups" : "workgroup";
  const files: string[] = [];
  if (/\bworkgroup_(sum|max)\s*\(/.test(code)) files.push(`reduce_${variant}`);
  if (/\blanes_reduce\s*\(/.test(code)) files.push(`lanes_${variant}`);
  return files;
}

/**
 * The lanes per row to give a family's `override LANES` for `lanes_reduce`: `wanted`, or on a device with
 * subgroups at most its smallest subgroup, since a row's lanes reduce by shuffles within one subgroup.
 * A device with subgroups of an unknown smallest size is an error naming `what`.
 */
export function rowLanes(gpu: Gpu, wanted: number, what: string): number {
  if (!gpu.hasSubgroups) return wanted;
  if (!(gpu.subgroupMinSize >= 1)) {
    throw new GpuError(`${what}: ${gpu.name} has subgroups of an unknown smallest size`);
  }
  return Math.min(wanted, gpu.subgroupMinSize);
}

/** A pipeline's family and its `var<uniform>` structs by binding (each struct's fields by name). */
interface PipelineUniforms {
  family: string;
  bindings: Map<number, Map<string, readonly WgslField[]>>;
}

const pipelineUniforms = new WeakMap<GPUComputePipeline, PipelineUniforms>();
const checkedLayouts = new WeakMap<Kernels, Map<UniformStruct, UniformLayout>>();
const bufferLayouts = new WeakMap<GPUBuffer, UniformLayout>();

/** Compiles and caches compute pipelines for one device. */
export class Kernels {
  /** The device these pipelines belong to. */
  readonly gpu: Gpu;
  readonly #modules = new Map<string, GPUShaderModule>();
  readonly #pipelines = new Map<string, Promise<GPUComputePipeline>>();
  readonly #uniforms = new Map<string, PipelineUniforms>();
  /** Where the `.wgsl` files are read from (the shipped `kernels/` unless given). */
  readonly dir: URL;
  readonly #sharedSources = new Map<string, string>();

  /** `dir` is where the `.wgsl` files are read from (default: the shipped `kernels/`). */
  constructor(gpu: Gpu, dir: URL = KERNELS_DIR) {
    this.gpu = gpu;
    this.dir = dir;
  }

  /** A shared file (the prelude, a reduction variant), read once; always from the shipped `kernels/`. */
  #shared(name: string): string {
    let text = this.#sharedSources.get(name);
    if (text === undefined) {
      text = kernelSource(name);
      this.#sharedSources.set(name, text);
    }
    return text;
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
      const typed = typedSource(family, kernelSource(family, this.dir), types);
      const shared = [{ name: "prelude", text: this.#shared("prelude") }];
      for (const name of reductionFiles(typed, this.gpu)) shared.push({ name, text: this.#shared(name) });
      const source = moduleSource(this.gpu, family, typed, shared);
      module = device.createShaderModule({ label: family, code: source.code });
      const info = await module.getCompilationInfo();
      const error = info.messages.find((m) => m.type === "error");
      if (error) {
        const place = messagePlace(error.lineNum, error.linePos, source.parts);
        throw new GpuError(`${place}: ${error.message.split("\n")[0]}`);
      }
      this.#modules.set(moduleKey, module);
    }
    let pipeline: GPUComputePipeline;
    try {
      pipeline = await device.createComputePipelineAsync({
        label: `${family}.${entry}`,
        layout: "auto",
        compute: { module, entryPoint: entry, constants },
      });
    } catch (e) {
      throw new GpuError(`kernel ${family}.${entry}: ${(e as Error).message}`);
    }
    pipelineUniforms.set(pipeline, this.#familyUniforms(family));
    return pipeline;
  }

  /** The `var<uniform>` structs of `family` by binding, read from its WGSL and the prelude. */
  #familyUniforms(family: string): PipelineUniforms {
    let uniforms = this.#uniforms.get(family);
    if (!uniforms) {
      const source = kernelSource(family, this.dir);
      const structs = new Map([
        ...wgslStructs(this.#shared("prelude"), "prelude.wgsl"),
        ...wgslStructs(source, `${family}.wgsl`),
      ]);
      const bindings = new Map<number, Map<string, readonly WgslField[]>>();
      for (const [binding, types] of wgslUniformBindings(source)) {
        bindings.set(binding, new Map(types.map((type) => [type, structs.get(type) ?? []])));
      }
      uniforms = { family, bindings };
      this.#uniforms.set(family, uniforms);
    }
    return uniforms;
  }
}

/**
 * `declaration` checked against the WGSL that `k` reads (`kernels/<family>.wgsl`, or the prelude for a
 * struct it declares), once per loader and declaration: see `uniformLayout` in src/gpu/uniforms.ts.
 */
function checkedLayout(k: Kernels, declaration: UniformStruct): UniformLayout {
  let layouts = checkedLayouts.get(k);
  if (!layouts) checkedLayouts.set(k, layouts = new Map());
  let layout = layouts.get(declaration);
  if (!layout) {
    layout = uniformLayout(declaration, kernelSource(declaration.family, k.dir), kernelSource("prelude"));
    layouts.set(declaration, layout);
  }
  return layout;
}

/**
 * Creates a uniform buffer of `declaration`'s struct holding `values`, by name, labelled for error
 * messages (plan time). The first buffer of a declaration checks it against the family's WGSL struct.
 */
export function uniformBuffer<F extends string>(
  k: Kernels,
  declaration: UniformStruct<F>,
  label: string,
  values: UniformValues<F>,
): GPUBuffer {
  const layout = checkedLayout(k, declaration);
  const data = packUniforms(layout, values);
  const buffer = k.gpu.device.createBuffer({
    label,
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  k.gpu.device.queue.writeBuffer(buffer, 0, data);
  bufferLayouts.set(buffer, layout);
  return buffer;
}

/** Rewrites a buffer made by {@linkcode uniformBuffer} with `values` (e.g. the next step's learning rate). */
export function writeUniforms(gpu: Gpu, buffer: GPUBuffer, values: UniformValues): void {
  const layout = bufferLayouts.get(buffer);
  if (!layout) throw new GpuError(`buffer ${buffer.label || "(unlabelled)"} was not made by uniformBuffer`);
  gpu.device.queue.writeBuffer(buffer, 0, packUniforms(layout, values));
}

/** Throws unless each buffer made by {@linkcode uniformBuffer} goes to a `var<uniform>` of its struct. */
function checkUniformBindings(pipeline: GPUComputePipeline, bindings: readonly Binding[]): void {
  const uniforms = pipelineUniforms.get(pipeline);
  if (!uniforms) return;
  bindings.forEach((binding, i) => {
    const buffer = bufferOf(binding);
    const layout = bufferLayouts.get(buffer);
    if (!layout) return;
    const structs = uniforms.bindings.get(i);
    const fields = structs?.get(layout.struct);
    const same = fields?.length === layout.fields.length &&
      fields.every((f, j) => f.name === layout.fields[j].name && f.type === layout.fields[j].type);
    if (!same) {
      const bound = structs
        ? `a var<uniform> of ${uniforms.family}.wgsl's ${[...structs.keys()].join(" or ")}`
        : "no var<uniform>";
      throw new GpuError(
        `kernel ${pipeline.label}: buffer ${buffer.label} holds ${layout.family}.wgsl's ${layout.struct}, ` +
          `but @binding(${i}) is ${bound}`,
      );
    }
  });
}

/** A buffer binding, or a sub-range of a buffer (offset must be a multiple of 256 bytes). */
export type Binding = GPUBuffer | BufferRange;

/** A sub-range of a buffer. */
export interface BufferRange {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

// Told apart by shape, not `instanceof GPUBuffer`: Dawn's buffers are not instances of Deno's class.
function isRange(binding: Binding): binding is BufferRange {
  return "buffer" in binding;
}

/** The buffer a binding refers to. */
export function bufferOf(binding: Binding): GPUBuffer {
  return isRange(binding) ? binding.buffer : binding;
}

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
    entries: bindings.map((b, i) => ({ binding: i, resource: isRange(b) ? b : { buffer: b } })),
  });
}

/** One recorded kernel launch. */
export interface Dispatch {
  /** The compiled kernel. */
  pipeline: GPUComputePipeline;
  /** Its buffers, bound once at plan time. */
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
  checkUniformBindings(pipeline, bindings);
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
