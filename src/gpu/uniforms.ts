/**
 * Kernel uniforms, by name. Each wrapper declares the uniform struct of its kernel family once
 * (`uniformStruct("layernorm", "Shape", { rows: "u32", cols4: "u32", eps: "f32", rows_per_block: "u32" })`)
 * and gives its values by name to `uniformBuffer` (src/gpu/kernels.ts). The first time a loader makes a
 * buffer of a declaration, it reads the struct from the family's WGSL (or the shared prelude, where
 * `MatmulParams` lives) and checks the declaration against it here: a field missing, extra, misspelled or
 * of another type is a one-line `GpuError` naming the family, the struct and the field. Values are packed
 * at the WGSL struct's offsets, and a dispatch checks that each uniform buffer goes to a `var<uniform>` of
 * its struct.
 *
 * The packer takes structs of u32, i32 and f32 fields (4 bytes each, 4-byte aligned, so the offsets are
 * 4 * the field's index and the buffer is rounded up to 16 bytes); a struct with a vector, matrix, array,
 * nested struct, f16 or an `@align`/`@size` attribute is rejected by name rather than packed wrong.
 *
 * "Uniforms" are these per-dispatch shapes and scalars; "params" are the model's weights.
 *
 * @module
 */
import { GpuError } from "./device.ts";

/** The WGSL scalar types a uniform field may have. */
export type UniformType = "u32" | "i32" | "f32";

/**
 * A kernel family's uniform struct as its wrapper declares it: the WGSL file, the struct's name and the
 * type of each field, by name (order free: the WGSL struct gives the order).
 */
export interface UniformStruct<F extends string = string> {
  /** The kernel family: `kernels/<family>.wgsl`, whose `var<uniform>` has the struct as its type. */
  readonly family: string;
  /** The WGSL struct's name (in the family's file or the prelude). */
  readonly struct: string;
  /** Each field's WGSL type. */
  readonly fields: Readonly<Record<F, UniformType>>;
}

/** Declares the uniform struct `struct` of `kernels/<family>.wgsl` (checked against the WGSL at first use). */
export function uniformStruct<F extends string>(
  family: string,
  struct: string,
  fields: Record<F, UniformType>,
): UniformStruct<F> {
  return Object.freeze({ family, struct, fields: Object.freeze({ ...fields }) });
}

/** The values of a uniform struct's fields, by name. */
export type UniformValues<F extends string = string> = Readonly<Record<F, number>>;

/** A field of a checked uniform struct: its name, type and byte offset. */
export interface UniformField {
  name: string;
  type: UniformType;
  offset: number;
}

/** A uniform struct as the WGSL lays it out, checked against its declaration. */
export interface UniformLayout {
  family: string;
  struct: string;
  /** In the WGSL struct's order. */
  fields: readonly UniformField[];
  /** Bytes of a buffer holding it (the struct's size rounded up to 16). */
  size: number;
}

/** A field of a WGSL struct as written: its name, type text, and attributes (`@align(16)`), if any. */
export interface WgslField {
  name: string;
  type: string;
  attributes: string;
}

/** The code of `source` without its comments. */
function stripComments(source: string): string {
  return source.replace(/\/\*[^]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
}

/** Splits at the commas outside `<...>` and `(...)`. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "<" || c === "(") depth++;
    else if (c === ">" || c === ")") depth--;
    else if (c === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((p) => p.trim()).filter((p) => p.length > 0);
}

/** The structs `source` declares, by name, each with its fields in order; `file` names it in errors. */
export function wgslStructs(source: string, file = "WGSL"): Map<string, WgslField[]> {
  const structs = new Map<string, WgslField[]>();
  for (const match of stripComments(source).matchAll(/\bstruct\s+(\w+)\s*\{([^}]*)\}/g)) {
    const fields = splitTopLevel(match[2]).map((text) => {
      const field = /^((?:@\w+(?:\s*\([^)]*\))?\s*)*)(\w+)\s*:\s*([^]+)$/.exec(text);
      if (!field) throw new GpuError(`${file} struct ${match[1]}: cannot read the field \`${text}\``);
      return { attributes: field[1].trim(), name: field[2], type: field[3].replace(/\s+/g, "") };
    });
    structs.set(match[1], fields);
  }
  return structs;
}

/** The struct types of the `var<uniform>` declarations of group 0 in `source`, by binding. */
export function wgslUniformBindings(source: string): Map<number, string[]> {
  const bindings = new Map<number, string[]>();
  const code = stripComments(source);
  const declaration = /((?:@\w+\s*\([^)]*\)\s*)+)var\s*<\s*uniform\s*>\s*\w+\s*:\s*(\w+)/g;
  for (const match of code.matchAll(declaration)) {
    const group = /@group\s*\(\s*(\d+)\s*\)/.exec(match[1]);
    const binding = /@binding\s*\(\s*(\d+)\s*\)/.exec(match[1]);
    if (!group || !binding || group[1] !== "0") continue;
    const index = Number(binding[1]);
    bindings.set(index, [...bindings.get(index) ?? [], match[2]]);
  }
  return bindings;
}

/** The types of the `var<uniform>` declarations of `source`. */
export function wgslUniformTypes(source: string): Set<string> {
  const types = new Set<string>();
  for (const match of stripComments(source).matchAll(/\bvar\s*<\s*uniform\s*>\s*\w+\s*:\s*(\w+)/g)) {
    types.add(match[1]);
  }
  return types;
}

const UNIFORM_TYPES: readonly string[] = ["u32", "i32", "f32"];
const EXPECTED: Record<UniformType, string> = { u32: "a u32", i32: "an i32", f32: "a number" };

/**
 * Checks `declaration` against the struct that `source` (the family's WGSL) or `prelude` declares, and
 * lays it out: a one-line `GpuError` naming the family, the struct and the field when they differ.
 */
export function uniformLayout(declaration: UniformStruct, source: string, prelude = ""): UniformLayout {
  const { family, struct } = declaration;
  const where = `${family}.wgsl struct ${struct}`;
  const uniformTypes = wgslUniformTypes(source);
  const fields = wgslStructs(source, `${family}.wgsl`).get(struct) ??
    wgslStructs(prelude, "prelude.wgsl").get(struct);
  if (!fields) {
    throw new GpuError(
      `${family}.wgsl declares no struct ${struct} (uniform structs: ${list(uniformTypes)})`,
    );
  }
  if (!uniformTypes.has(struct)) {
    throw new GpuError(`${where} is the type of no var<uniform> (uniform structs: ${list(uniformTypes)})`);
  }
  for (const f of fields) {
    if (f.attributes || !UNIFORM_TYPES.includes(f.type)) {
      throw new GpuError(
        `${where}: field ${f.name} is ${f.attributes ? `${f.attributes} ` : ""}${f.type}; the uniform ` +
          `packer takes u32, i32 and f32 fields without attributes`,
      );
    }
  }
  const declared = declaration.fields as Readonly<Record<string, UniformType>>;
  const undeclared = fields.filter((f) => !Object.hasOwn(declared, f.name));
  for (const name of Object.keys(declared)) {
    if (!fields.some((f) => f.name === name)) {
      const near = undeclared.length > 0
        ? ` (misspelled ${undeclared.map((f) => f.name).join(" or ")}?)`
        : "";
      throw new GpuError(`${where} has no field ${name}, which its wrapper declares${near}`);
    }
  }
  if (undeclared.length > 0) {
    const f = undeclared[0];
    throw new GpuError(`${where}: field ${f.name} (${f.type}) is missing from its wrapper's declaration`);
  }
  for (const f of fields) {
    if (declared[f.name] !== f.type) {
      throw new GpuError(`${where}: field ${f.name} is ${f.type} in the WGSL, declared ${declared[f.name]}`);
    }
  }
  return {
    family,
    struct,
    fields: fields.map((f, i) => ({ name: f.name, type: f.type as UniformType, offset: 4 * i })),
    size: Math.max(16, Math.ceil(fields.length / 4) * 16),
  };
}

function list(names: Iterable<string>): string {
  const all = [...names];
  return all.length > 0 ? all.join(", ") : "none";
}

/** Packs `values` by name at `layout`'s offsets; a value missing, extra or out of its type's range throws. */
export function packUniforms(layout: UniformLayout, values: UniformValues): ArrayBuffer {
  const where = `${layout.family}.wgsl struct ${layout.struct}`;
  for (const name of Object.keys(values)) {
    if (!layout.fields.some((f) => f.name === name)) {
      throw new GpuError(`${where} has no field ${name} to take a value`);
    }
  }
  const data = new ArrayBuffer(layout.size);
  const view = new DataView(data);
  for (const { name, type, offset } of layout.fields) {
    if (!Object.hasOwn(values, name)) throw new GpuError(`${where}: no value for field ${name}`);
    const v = values[name];
    const [min, max] = type === "u32" ? [0, 0xffffffff] : [-0x80000000, 0x7fffffff];
    if (typeof v !== "number" || (type !== "f32" && !(Number.isInteger(v) && v >= min && v <= max))) {
      throw new GpuError(`${where}: field ${name} = ${v}, expected ${EXPECTED[type]}`);
    }
    if (type === "u32") view.setUint32(offset, v, true);
    else if (type === "i32") view.setInt32(offset, v, true);
    else view.setFloat32(offset, v, true);
  }
  return data;
}
