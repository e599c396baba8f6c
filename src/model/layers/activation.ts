/**
 * The FFN nonlinearity on the GPU (kernels/activation.wgsl): exact GELU, and the GELU-gated linear
 * unit (h = [value | gate] -> value * gelu(gate)), forward and backward.
 *
 * The kernels read and write 4 floats at a time, so element counts must be multiples of 4 (the GLU's
 * `inner` a multiple of 8); the model's widths are. Every tensor may be an f32 or an f16 buffer (see
 * `storageBuffer`), each independently of the others; the math is f32 either way.
 */
import type { Binding, Dispatch, Kernels, StorageTypes } from "../../gpu/kernels.ts";
import { dispatch, storageTypes, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkFloats, checkMultiple, flatGrid } from "./plan.ts";
import { type BenchShape, benchTokens, f32Bytes as f32, type KernelCase } from "../../bench/case.ts";
import { downInputWidth } from "../config.ts";

const FAMILY = "activation";
const WG = 256;
/** The kernels' uniform: vec4s of work, and the GLU's vec4s per half row (0 for GELU). */
const SHAPE = uniformStruct(FAMILY, "Shape", { count: "u32", half4: "u32" });

/** Buffers and size of {@linkcode geluForward}. */
export interface GeluForwardOptions {
  /** Input [length]. */
  x: Binding;
  /** Output [length]. */
  y: Binding;
  /** Number of elements, a multiple of 4. */
  length: number;
}

/** y = gelu(x) = x Phi(x), with the exact (erf) GELU. */
export async function geluForward(k: Kernels, options: GeluForwardOptions): Promise<Dispatch[]> {
  const { x, y, length } = options;
  checkMultiple("geluForward: length", length, 4);
  const types = storageTypes({ FWD_X_T: x, FWD_Y_T: y });
  checkFloats("geluForward x", x, length);
  checkFloats("geluForward y", y, length);
  return [await elementwise(k, "gelu_forward", types, length / 4, [x, y])];
}

/** Buffers and size of {@linkcode geluBackward}. */
export interface GeluBackwardOptions {
  /** Gradient of the output [length]. */
  dy: Binding;
  /** The forward input [length]. */
  x: Binding;
  /** Gradient of the input [length], overwritten. */
  dx: Binding;
  /** Number of elements, a multiple of 4. */
  length: number;
}

/** dx = dy * (Phi(x) + x phi(x)). */
export async function geluBackward(k: Kernels, options: GeluBackwardOptions): Promise<Dispatch[]> {
  const { dy, x, dx, length } = options;
  checkMultiple("geluBackward: length", length, 4);
  const types = storageTypes({ BWD_DY_T: dy, BWD_X_T: x, BWD_DX_T: dx });
  checkFloats("geluBackward dy", dy, length);
  checkFloats("geluBackward x", x, length);
  checkFloats("geluBackward dx", dx, length);
  return [await elementwise(k, "gelu_backward", types, length / 4, [dy, x, dx])];
}

/** Buffers and shape of {@linkcode gluForward}. */
export interface GluForwardOptions {
  /** The up projection's output [rows, inner]: value half, then gate half of each row. */
  h: Binding;
  /** Output [rows, inner / 2]. */
  out: Binding;
  rows: number;
  /** Width of h, a multiple of 8. */
  inner: number;
}

/** out = value * gelu(gate), where each row of h is [value | gate] (PyTorch `h.chunk(2, -1)`). */
export async function gluForward(k: Kernels, options: GluForwardOptions): Promise<Dispatch[]> {
  const { h, out, rows, inner } = options;
  checkMultiple("gluForward: rows", rows, 1);
  checkMultiple("gluForward: inner", inner, 8);
  const types = storageTypes({ GLU_H_T: h, GLU_OUT_T: out });
  checkFloats("gluForward h", h, rows * inner);
  checkFloats("gluForward out", out, rows * inner / 2);
  return [await elementwise(k, "glu_forward", types, rows * inner / 8, [h, out], inner / 8)];
}

/** Buffers and shape of {@linkcode gluBackward}. */
export interface GluBackwardOptions {
  /** Gradient of the output [rows, inner / 2]. */
  dout: Binding;
  /** The forward input [rows, inner]. */
  h: Binding;
  /** Gradient of h [rows, inner], overwritten. */
  dh: Binding;
  rows: number;
  /** Width of h, a multiple of 8. */
  inner: number;
}

/** dvalue = dout * gelu(gate), dgate = dout * value * gelu'(gate). */
export async function gluBackward(k: Kernels, options: GluBackwardOptions): Promise<Dispatch[]> {
  const { dout, h, dh, rows, inner } = options;
  checkMultiple("gluBackward: rows", rows, 1);
  checkMultiple("gluBackward: inner", inner, 8);
  const types = storageTypes({ GLU_DOUT_T: dout, GLU_BWD_H_T: h, GLU_DH_T: dh });
  checkFloats("gluBackward dout", dout, rows * inner / 2);
  checkFloats("gluBackward h", h, rows * inner);
  checkFloats("gluBackward dh", dh, rows * inner);
  return [await elementwise(k, "glu_backward", types, rows * inner / 8, [dout, h, dh], inner / 8)];
}

/**
 * One dispatch of `entry`, its buffers stored as `types`, with an invocation per vec4 of `count`; `half4` is
 * the GLU's vec4s per half row.
 */
async function elementwise(
  k: Kernels,
  entry: string,
  types: StorageTypes,
  count: number,
  buffers: Binding[],
  half4 = 0,
): Promise<Dispatch> {
  const pipeline = await k.pipeline(FAMILY, entry, { WG }, types);
  const shape = uniformBuffer(k, SHAPE, `${entry} shape`, { count, half4 });
  return dispatch(k.gpu, pipeline, [shape, ...buffers], flatGrid(k.gpu, Math.ceil(count / WG)));
}

/**
 * The benchmark cases of the configured FFN activation (timed by src/bench/kernels.ts): GELU's or the
 * GLU's forward and backward.
 */
export function activationBenchCases(shape: BenchShape): KernelCase[] {
  const { config } = shape;
  const I = config.intermediate;
  const N = benchTokens(shape);
  if (config.ffn === "gelu") {
    return [{
      name: "gelu_forward",
      shape: `${N}x${I}`,
      // x read, y written.
      bytes: f32(2 * N * I),
      flops: null,
      plan: (k, b) => geluForward(k, { x: b.random("x", N * I), y: b.zeros("y", N * I), length: N * I }),
    }, {
      name: "gelu_backward",
      shape: `${N}x${I}`,
      // dy and x read, dx written.
      bytes: f32(3 * N * I),
      flops: null,
      plan: (k, b) =>
        geluBackward(k, {
          dy: b.random("dy", N * I),
          x: b.random("x", N * I),
          dx: b.zeros("dx", N * I),
          length: N * I,
        }),
    }];
  }
  const half = downInputWidth(config);
  return [{
    name: "glu_forward",
    shape: `${N}x${I}`,
    // h (N x I) read, out (N x I/2) written.
    bytes: f32(N * I + N * half),
    flops: null,
    plan: (k, b) =>
      gluForward(k, { h: b.random("h", N * I), out: b.zeros("out", N * half), rows: N, inner: I }),
  }, {
    name: "glu_backward",
    shape: `${N}x${I}`,
    // dout (N x I/2) and h (N x I) read, dh (N x I) written.
    bytes: f32(N * half + 2 * N * I),
    flops: null,
    plan: (k, b) =>
      gluBackward(k, {
        dout: b.random("dout", N * half),
        h: b.random("h", N * I),
        dh: b.zeros("dh", N * I),
        rows: N,
        inner: I,
      }),
  }];
}
