/**
 * Benchmarks. Prints one JSON line per measurement to stdout (the adapter's name to stderr):
 *
 *   deno task bench [--gpu auto] [--small] [--tile 64x128x8/u2] [--matrix-tile sg2x2/f4x4/k2] [--splits N]
 *                   [--layout NN,NT,TN] [--only qkv,cube] [--operands f16]
 *                   [--shape MxNxK] [--warmup 0.5] [--time 0.3]
 *   deno task bench --step [--preset crammed] [--micro-batch 128,256] [--accumulate 1] [--steps 10] [--precision f16]
 *   deno task bench --kernels [--small] [--preset crammed] [--micro-batch 128] [--only adamw,...]
 *                   [--bandwidth 4.3e12] [--warmup 0.5] [--time 0.3]
 *   deno task bench --profile [--small] [--preset crammed] [--micro-batch 128] [--steps 10] [--dispatches]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseArgsMessage } from "../src/args.ts";
import { GpuError, parseGpuBackend, requestGpu } from "../src/gpu/device.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import type { StorageType } from "../src/gpu/buffers.ts";
import {
  benchMatmul,
  CRAMMED_DIMS,
  type MatmulLayout,
  type MatmulShape,
  modelShapes,
  SMALL_DIMS,
} from "../src/bench/matmul.ts";
import { parseMatmulTile, parseMatrixTile } from "../src/model/layers/matmul.ts";
import { presets } from "../src/model/config.ts";
import { benchStep } from "../src/bench/step.ts";
import { benchKernels, H200_BANDWIDTH } from "../src/bench/kernels.ts";
import { profileStep } from "../src/bench/profile.ts";

const USAGE = `usage: deno task bench [options]
  --gpu B          builtin (Deno's WebGPU), dawn (npm webgpu: subgroup matrices, the tensor cores) or auto
                   (default: dawn on a GPU where it loads and has f16 subgroup matrices, else builtin)
  --small          the model's products scaled down (tokens / 64, features / 8), for the CPU adapter;
                   with --kernels or --profile: --preset small --micro-batch 2
  --tile SPEC      tiled-kernel split BMxBNxBK[/t16][/uN] instead of the wrapper's choice (128x128x8/u8, or
                   64x128 or 64x64 where a small product runs faster with it by the wrapper's wave model);
                   also keeps f16 operands off the matrix units
  --matrix-tile S  subgroup-matrix kernel split sgRxC/fRxC/kN (subgroups, fragments per subgroup, matrix steps
                   per K tile) instead of sg2x2/f4x4/k2; for f16 operands on a device with subgroup matrices
  --splits N       split K N ways instead of the wrapper's choice
  --layout LIST    comma-separated layouts among NN,NT,TN (default all)
  --only LIST      comma-separated product names among qkv,attn_out,ffn_up,ffn_down,mlm_decoder,cube
  --shape MxNxK    one product of this shape instead of the model's
  --warmup S       seconds of warm-up per product (default 0.5)
  --time S         seconds of the timed run per product (default 0.3)
  --operands T     f32 (default) or f16: how the products' A and B are stored (C stays f32); f16 runs on
                   the matrix units where the device has them
  --step           time the full training step instead (forward, backward, clipping, AdamW)
  --preset NAME    with --step: the model (default crammed)
  --micro-batch L  with --step: comma-separated micro-batch sizes (default 128)
  --accumulate N   with --step: micro-batches per optimizer step (default 1)
  --steps N        with --step or --profile: timed steps (default 10)
  --precision P    with --step or --profile: f32 (default), f16 or f32,f16 (pretrain's --precision)
  --paced B        with --step: true or false, whether the host sleeps before waiting for the GPU (default:
                   true on Dawn, whose pending waits slow the step; false on the built-in backend)
  --kernels        time every non-matmul kernel of the step at the model's shapes, against the bandwidth
  --bandwidth B    with --kernels: bytes per second that vs_bandwidth compares with (default 4.3e12)
  --softmax-lanes N  with --kernels: invocations per row of scores in the softmax passes, for tuning
                   (a power of two up to 256; default 8 in the forward, 32 in the backward)
  --profile        GPU time of every dispatch of the training step by kernel, and GPU busy over wall time
  --dispatches     with --profile: also one line per dispatch, in step order

  With --kernels and --profile, --preset and --micro-batch (a single size or a list) pick the model; with
  --kernels, --only picks kernel cases by name.`;

function positive(option: string, value: string): number {
  const v = Number(value);
  if (!(v > 0)) throw new GpuError(`--${option} ${value}: expected a positive number`);
  return v;
}

/** A storage type given as option `name`: f32 or f16. */
function storageTypeOption(name: string, value: string): StorageType {
  if (value !== "f32" && value !== "f16") throw new GpuError(`--${name}: "${value}" is not f32 or f16`);
  return value;
}

/** A boolean given as option `name`: true or false. */
function booleanOption(name: string, value: string): boolean {
  if (value !== "true" && value !== "false") throw new GpuError(`--${name}: "${value}" is not true or false`);
  return value === "true";
}

/** The command line's values; an unknown option or a missing value is a one-line error. */
function parseCommandLine(args: string[]) {
  const options = {
    gpu: { type: "string", default: "auto" },
    small: { type: "boolean", default: false },
    tile: { type: "string" },
    "matrix-tile": { type: "string" },
    operands: { type: "string", default: "f32" },
    splits: { type: "string" },
    layout: { type: "string", default: "NN,NT,TN" },
    only: { type: "string" },
    shape: { type: "string" },
    warmup: { type: "string", default: "0.5" },
    time: { type: "string", default: "0.3" },
    step: { type: "boolean", default: false },
    preset: { type: "string", default: "crammed" },
    "micro-batch": { type: "string" },
    accumulate: { type: "string", default: "1" },
    steps: { type: "string", default: "10" },
    precision: { type: "string", default: "f32" },
    paced: { type: "string" },
    kernels: { type: "boolean", default: false },
    bandwidth: { type: "string" },
    "softmax-lanes": { type: "string" },
    profile: { type: "boolean", default: false },
    dispatches: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  } as const;
  try {
    return parseArgs({
      args,
      options,
    });
  } catch (e) {
    throw new GpuError(parseArgsMessage(e, options));
  }
}

async function main(args: string[]): Promise<void> {
  const { values } = parseCommandLine(args);
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const backend = parseGpuBackend(values.gpu);
  const modes = ["step", "kernels", "profile"] as const;
  if (modes.filter((m) => values[m]).length > 1) {
    throw new GpuError(`--step, --kernels and --profile: expected at most one of them`);
  }
  // --small stands for the small preset at micro-batch 2 in the kernel and profile modes.
  const small = values.small && (values.kernels || values.profile);
  const presetName = small && values.preset === "crammed" ? "small" : values.preset;
  const microBatches = (values["micro-batch"] ?? (small ? "2" : "128"))
    .split(",").map((size) => positive("micro-batch", size));
  const config = presets[presetName];
  const precisions = values.precision.split(",").map((p) => storageTypeOption("precision", p));
  if ((values.step || values.kernels || values.profile) && !config) {
    throw new GpuError(`--preset ${presetName}: expected one of ${Object.keys(presets).join(", ")}`);
  }
  if (values.kernels) {
    const options = {
      only: values.only?.split(","),
      bandwidth: values.bandwidth === undefined ? H200_BANDWIDTH : positive("bandwidth", values.bandwidth),
      softmaxLanes: values["softmax-lanes"] === undefined
        ? undefined
        : positive("softmax-lanes", values["softmax-lanes"]),
      warmupSeconds: positive("warmup", values.warmup),
      timedSeconds: positive("time", values.time),
    };
    const gpu = await requestGpu({ backend });
    console.error(`# ${gpu.name} (${gpu.backend}), ${presetName}`);
    const k = new Kernels(gpu);
    for (const microBatch of microBatches) {
      for await (const result of benchKernels(k, config, microBatch, options)) {
        console.log(JSON.stringify({ micro_batch: microBatch, ...result }));
      }
    }
    return;
  }
  if (values.profile) {
    const gpu = await requestGpu({ backend });
    console.error(`# ${gpu.name} (${gpu.backend}), ${presetName}`);
    if (!gpu.hasTimestamps) {
      console.error(
        "# the adapter has no timestamp-query: only wall-time figures, no per-dispatch GPU times",
      );
    }
    const k = new Kernels(gpu);
    for (const precision of precisions) {
      for (const microBatch of microBatches) {
        const steps = positive("steps", values.steps);
        const profile = await profileStep(k, config, { microBatch, steps, precision });
        const tag = { precision, micro_batch: microBatch };
        for (const line of profile.kernels) console.log(JSON.stringify({ ...tag, ...line }));
        if (values.dispatches) {
          for (const line of profile.dispatches) console.log(JSON.stringify({ ...tag, ...line }));
        }
        console.log(JSON.stringify({ preset: presetName, precision, ...profile.step }));
      }
    }
    return;
  }
  if (values.step) {
    const gpu = await requestGpu({ backend });
    console.error(`# ${gpu.name} (${gpu.backend})`);
    const k = new Kernels(gpu);
    for (const precision of precisions) {
      let best: { micro_batch: number; tokens_per_s: number } | undefined;
      for (const microBatch of microBatches) {
        const result = await benchStep(k, config, {
          microBatch,
          accumulate: positive("accumulate", values.accumulate),
          timedSteps: positive("steps", values.steps),
          precision,
          paced: values.paced === undefined ? undefined : booleanOption("paced", values.paced),
        });
        console.log(JSON.stringify({ preset: values.preset, backend: gpu.backend, ...result }));
        if (!best || result.tokens_per_s > best.tokens_per_s) best = result;
      }
      if (best && microBatches.length > 1) {
        const { micro_batch, tokens_per_s } = best;
        console.log(
          JSON.stringify({
            preset: values.preset,
            bench: "train_step_best",
            precision,
            micro_batch,
            tokens_per_s,
          }),
        );
      }
    }
    return;
  }
  const layouts = values.layout.split(",");
  for (const l of layouts) {
    if (!["NN", "NT", "TN"].includes(l)) throw new GpuError(`--layout: "${l}" is not one of NN, NT, TN`);
  }
  let shapes: MatmulShape[];
  if (values.shape) {
    const match = /^(\d+)x(\d+)x(\d+)$/.exec(values.shape);
    if (!match) throw new GpuError(`--shape ${values.shape}: expected MxNxK, e.g. 16384x2304x768`);
    const [m, n, k] = match.slice(1).map(Number);
    shapes = layouts.map((layout) => ({ name: "custom", layout: layout as MatmulLayout, m, n, k }));
  } else {
    const only = values.only?.split(",");
    shapes = modelShapes(values.small ? SMALL_DIMS : CRAMMED_DIMS)
      .filter((s) => layouts.includes(s.layout) && (!only || only.includes(s.name)));
    if (shapes.length === 0) throw new GpuError(`--only ${values.only}: no product has these names`);
  }
  const options = {
    tile: values.tile === undefined ? undefined : parseMatmulTile(values.tile),
    matrixTile: values["matrix-tile"] === undefined ? undefined : parseMatrixTile(values["matrix-tile"]),
    operands: storageTypeOption("operands", values.operands),
    splits: values.splits === undefined ? undefined : positive("splits", values.splits),
    warmupSeconds: positive("warmup", values.warmup),
    timedSeconds: positive("time", values.time),
  };
  const gpu = await requestGpu({ backend });
  console.error(`# ${gpu.name} (${gpu.backend})`);
  for await (const result of benchMatmul(new Kernels(gpu), shapes, options)) {
    console.log(JSON.stringify({ backend: gpu.backend, ...result }));
  }
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
