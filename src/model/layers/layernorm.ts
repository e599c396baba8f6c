/**
 * LayerNorm on the GPU (kernels/layernorm.wgsl): forward saves each row's mean and rstd; backward
 * writes dx and adds dweight/dbias into the gradient buffers (gradients accumulate over micro-batches).
 *
 * The backward's parameter gradients are a deterministic two-stage reduction over rows: per block of
 * rows into a scratch buffer that the wrapper allocates (blocks x cols x 8 bytes: 3 MiB for 16384 rows
 * of 768 in blocks of 32), then a fixed-order sum per column. Weight and bias may be sub-ranges of the
 * flat parameter and gradient buffers. The kernels read rows as vec4s: `cols` must be a multiple of 4.
 *
 * The forward's `y` and the backward's `dy` may be f16 buffers (see `storageBuffer`); every other buffer
 * is f32. The kernels compute in f32 either way.
 *
 * @module
 */
import { GpuError } from "../../gpu/device.ts";
import { storageBuffer } from "../../gpu/buffers.ts";
import type { Binding, Dispatch, Kernels } from "../../gpu/kernels.ts";
import { dispatch, rowLanes, storageTypes, uniformBuffer } from "../../gpu/kernels.ts";
import { uniformStruct } from "../../gpu/uniforms.ts";
import { checkBuffer, checkDistinct, checkFloats, checkMultiple, flatGrid } from "./plan.ts";
import { type BenchShape, benchTokens, f32Bytes as f32, type KernelCase } from "../../bench/case.ts";

const FAMILY = "layernorm";
/** The kernels' uniform; the forward leaves rows_per_block 0, the backward eps 0. */
const SHAPE = uniformStruct(FAMILY, "Shape", {
  rows: "u32",
  cols4: "u32",
  eps: "f32",
  rows_per_block: "u32",
});
/** Invocations per row of the forward: 768 columns are 192 vec4s, 3 per invocation. */
const WG = 64;
/** Invocations per workgroup of the backward's first stage (BWD_WG in the kernel). */
const BACKWARD_WG = 256;
/** The most vec4 columns one invocation of the backward holds per row (K in the kernel). */
const MAX_K = 4;
/** vec4 columns per workgroup of the second backward stage (PG_COLS4 in the kernel). */
const PARAM_GRAD_COLS4 = 4;

/** Buffers and shape of {@linkcode layerNormForward}. */
export interface LayerNormForwardOptions {
  /** Input [rows, cols]; cols a multiple of 4. */
  x: Binding;
  /** Scale [cols]. */
  weight: Binding;
  /** Shift [cols]. */
  bias: Binding;
  /** Output [rows, cols]; f32 or f16. */
  y: Binding;
  /** Saved for the backward: mean [rows]. */
  mean: Binding;
  /** Saved for the backward: 1 / sqrt(var + eps) [rows]. */
  rstd: Binding;
  rows: number;
  cols: number;
  /** Added to the variance (the config's normEps). */
  eps: number;
}

/** y = (x - mean) * rstd * weight + bias per row, with PyTorch's biased variance. */
export async function layerNormForward(k: Kernels, options: LayerNormForwardOptions): Promise<Dispatch[]> {
  const { x, weight, bias, y, mean, rstd, rows, cols, eps } = options;
  checkShape("layerNormForward", rows, cols);
  if (!(eps >= 0)) throw new GpuError(`layerNormForward: eps = ${eps}, expected a number >= 0`);
  checkBuffer("layerNormForward x", x, rows * cols * 4);
  checkBuffer("layerNormForward weight", weight, cols * 4);
  checkBuffer("layerNormForward bias", bias, cols * 4);
  const types = storageTypes({ FWD_Y_T: y });
  checkFloats("layerNormForward y", y, rows * cols);
  checkBuffer("layerNormForward mean", mean, rows * 4);
  checkBuffer("layerNormForward rstd", rstd, rows * 4);
  const pipeline = await k.pipeline(FAMILY, "layernorm_forward", { WG }, types);
  const shape = uniformBuffer(k, SHAPE, "layernorm_forward shape", {
    rows,
    cols4: cols / 4,
    eps,
    rows_per_block: 0,
  });
  return [dispatch(k.gpu, pipeline, [shape, x, weight, bias, y, mean, rstd], flatGrid(k.gpu, rows))];
}

/** Buffers and shape of {@linkcode layerNormBackward}. */
export interface LayerNormBackwardOptions {
  /** Gradient of the output [rows, cols]; f32 or f16. */
  dy: Binding;
  /** The forward input [rows, cols]. */
  x: Binding;
  weight: Binding;
  /** The forward's saved mean [rows] and rstd [rows]. */
  mean: Binding;
  rstd: Binding;
  /** Gradient of the input [rows, cols], overwritten. */
  dx: Binding;
  /**
   * Gradient [rows, cols] reaching the input around the LayerNorm (a residual connection): added to dx.
   * Must not be `dx` itself.
   */
  residual?: Binding;
  /** Gradients of weight and bias [cols], added to. */
  dweight: Binding;
  dbias: Binding;
  rows: number;
  cols: number;
  /**
   * Rows per workgroup of the first reduction stage (default: 8 per row slot of the workgroup, 32 for
   * 768 columns, which an H200 ran 5% faster than 16): fewer means more workgroups and a larger scratch
   * buffer for the second stage to sum.
   */
  rowsPerBlock?: number;
}

/**
 * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * weight; dweight += sum over rows of
 * dy * xhat and dbias += sum of dy, by a deterministic two-stage reduction (two dispatches).
 */
export async function layerNormBackward(k: Kernels, options: LayerNormBackwardOptions): Promise<Dispatch[]> {
  const { dy, x, weight, mean, rstd, dx, residual, dweight, dbias, rows, cols } = options;
  const name = "layerNormBackward";
  checkShape(name, rows, cols);
  if (residual) checkDistinct(`${name}: residual and dx`, residual, dx);
  const cols4 = cols / 4;
  // Invocations per row: the fewest (a power of two) that hold a row in at most MAX_K vec4s each, so that
  // the workgroup works on several rows at once.
  let perRow = 1;
  while (perRow < BACKWARD_WG && perRow * MAX_K < cols4) perRow *= 2;
  const perThread = Math.ceil(cols4 / perRow);
  const slots = BACKWARD_WG / perRow;
  const { rowsPerBlock = 8 * slots } = options;
  checkMultiple(`${name}: rowsPerBlock`, rowsPerBlock, 1);
  // Workgroup memory: every row slot's column sums, plus the row reduction's lane and (two halves of)
  // group sums.
  const sharedBytes = slots * cols4 * 16 + 3 * BACKWARD_WG * 8;
  if (sharedBytes > k.gpu.limits.maxComputeWorkgroupStorageSize) {
    throw new GpuError(
      `${name}: cols = ${cols} needs ${sharedBytes} bytes of workgroup memory, this adapter has ` +
        `${k.gpu.limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  if (perThread > MAX_K) {
    throw new GpuError(`${name}: cols = ${cols}, at most ${4 * BACKWARD_WG * MAX_K} fit in registers`);
  }
  const types = storageTypes({ BWD_DY_T: dy });
  checkFloats(`${name} dy`, dy, rows * cols);
  checkBuffer(`${name} x`, x, rows * cols * 4);
  checkBuffer(`${name} weight`, weight, cols * 4);
  checkBuffer(`${name} mean`, mean, rows * 4);
  checkBuffer(`${name} rstd`, rstd, rows * 4);
  checkBuffer(`${name} dx`, dx, rows * cols * 4);
  checkBuffer(`${name} dweight`, dweight, cols * 4);
  checkBuffer(`${name} dbias`, dbias, cols * 4);
  if (residual) checkBuffer(`${name} residual`, residual, rows * cols * 4);
  const blocks = Math.ceil(rows / rowsPerBlock);
  const gpu = k.gpu;
  const partials = storageBuffer(gpu, `${name} partials`, blocks * cols * 8);
  const shape = uniformBuffer(k, SHAPE, `${name} shape`, {
    rows,
    cols4,
    eps: 0,
    rows_per_block: rowsPerBlock,
  });
  const rowsPipeline = await k.pipeline(FAMILY, "layernorm_backward", {
    TPR: perRow,
    K: perThread,
    SLOT_COLS4: slots * cols4,
    RESIDUAL: residual ? 1 : 0,
    SUBGROUP_ROWS: gpu.hasSubgroups ? 1 : 0,
    // Without subgroups LANES is unused: the kernel keeps its own two-level tree.
    LANES: rowLanes(gpu, perRow, name),
  }, types);
  const residualBinding = residual ?? storageBuffer(gpu, `${name} residual placeholder`, 16);
  const sumPipeline = await k.pipeline(FAMILY, "layernorm_param_grads");
  return [
    dispatch(
      gpu,
      rowsPipeline,
      [shape, dy, x, weight, mean, rstd, dx, partials, residualBinding],
      flatGrid(gpu, blocks),
    ),
    dispatch(gpu, sumPipeline, [shape, partials, dweight, dbias], [
      Math.ceil((2 * cols4) / PARAM_GRAD_COLS4),
    ]),
  ];
}

function checkShape(name: string, rows: number, cols: number): void {
  checkMultiple(`${name}: rows`, rows, 1);
  checkMultiple(`${name}: cols`, cols, 4);
}

/** LayerNorm's benchmark cases (timed by src/bench/kernels.ts): forward, and backward with a residual. */
export function layerNormBenchCases(shape: BenchShape): KernelCase[] {
  const { hidden: H, normEps: eps } = shape.config;
  const N = benchTokens(shape);
  const rowsShape = `${N}x${H}`;
  return [{
    name: "layernorm_forward",
    shape: rowsShape,
    // x read, y written (N x H each); weight and bias H each; mean and rstd N each written.
    bytes: f32(2 * N * H + 2 * H + 2 * N),
    flops: null,
    plan: (k, b) =>
      layerNormForward(k, {
        x: b.random("x", N * H),
        weight: b.random("weight", H),
        bias: b.random("bias", H),
        y: b.zeros("y", N * H),
        mean: b.zeros("mean", N),
        rstd: b.zeros("rstd", N),
        rows: N,
        cols: H,
        eps,
      }),
  }, {
    // The wrapper's default rows per block of the first stage (8 per row slot).
    name: "layernorm_backward",
    shape: `${rowsShape}, residual`,
    // dy, x and residual read, dx written (N x H each), weight H, mean and rstd N each, dweight and
    // dbias read and written. The two-stage reduction's partial sums are not counted.
    bytes: f32(4 * N * H + H + 2 * N + 4 * H),
    flops: null,
    plan: (k, b) =>
      layerNormBackward(k, {
        dy: b.random("dy", N * H),
        x: b.random("x", N * H),
        weight: b.random("weight", H),
        mean: b.random("mean", N),
        rstd: b.random("rstd", N),
        dx: b.zeros("dx", N * H),
        residual: b.random("residual", N * H),
        dweight: b.zeros("dweight", H),
        dbias: b.zeros("dbias", H),
        rows: N,
        cols: H,
      }),
  }];
}
