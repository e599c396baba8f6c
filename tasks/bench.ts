/**
 * Benchmarks. Prints one JSON line per measurement to stdout (the adapter's name to stderr):
 *
 *   deno task bench [--gpu auto] [--small] [--tile 64x128x8/u2] [--matrix-tile sg2x2/f4x4/k2] [--splits N]
 *                   [--layout NN,NT,TN] [--only qkv,cube] [--operands f16]
 *                   [--shape MxNxK] [--warmup 0.5] [--time 0.3]
 *   deno task bench --step [--preset crammed] [--micro-batch 128,256] [--accumulate 1] [--steps 10] [--precision f16]
 *                   [--peer ../shared/peer/torch_peer.py]
 *   deno task bench --kernels [--small] [--preset crammed] [--micro-batch 128] [--only adamw,...]
 *                   [--bandwidth <bytes/s>] [--warmup 0.5] [--time 0.3]
 *   deno task bench --profile [--small] [--preset crammed] [--micro-batch 128] [--steps 10] [--dispatches]
 *
 * @module
 */
import { type OptionTable, parseCommandLine, runTask, UsageError, usageText } from "../src/args.ts";
import {
  fail,
  listOf,
  oneOf,
  parsedBy,
  positiveInteger,
  positiveNumber,
  text,
  type ValueParser,
} from "../src/arg_values.ts";
import { type Gpu, GPU_BACKENDS, requestGpu } from "../src/gpu/device.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import {
  benchMatmul,
  CRAMMED_DIMS,
  type MatmulLayout,
  type MatmulShape,
  modelShapes,
  SMALL_DIMS,
} from "../src/bench/matmul.ts";
import {
  formatMatmulTile,
  parseMatmulTile,
  parseMatrixTile,
  useMatmulTile,
} from "../src/model/layers/matmul.ts";
import { presets } from "../src/model/config.ts";
import { benchStep, type StepBenchResult } from "../src/bench/step.ts";
import { runPeerBench, versusPeer } from "../src/bench/peer.ts";
import { benchKernels } from "../src/bench/kernels.ts";
import { profileStep } from "../src/bench/profile.ts";

const LAYOUTS: readonly MatmulLayout[] = ["NN", "NT", "TN"];

/** A product's shape, MxNxK. */
const shape: ValueParser<{ m: number; n: number; k: number }> = (text, flag) => {
  const match = /^(\d+)x(\d+)x(\d+)$/.exec(text);
  if (!match) fail(flag, "MxNxK, e.g. 16384x2304x768", text);
  const [m, n, k] = match.slice(1).map(Number);
  return { m, n, k };
};

const TABLE = {
  gpu: {
    value: "<backend>",
    default: "auto",
    shown: "dawn on a GPU where it loads and has f16 subgroup matrices, else builtin",
    help: "builtin (Deno's WebGPU), dawn (npm webgpu: subgroup matrices, the tensor cores) or auto.",
    parse: oneOf(GPU_BACKENDS),
  },
  subgroups: {
    value: "true|false",
    default: true,
    help: "Reductions with subgroup operations where the device has them; false: the workgroup-memory " +
      "trees (kernels/reduce_*.wgsl, lanes_*.wgsl), for comparing the two.",
    parse: (text, flag) => oneOf(["true", "false"])(text, flag) === "true",
  },
  small: {
    switch: true,
    help:
      "The model's products scaled down (tokens / 64, features / 8), for the CPU adapter; with --kernels " +
      "or --profile: --preset small --micro-batch 2.",
  },
  tile: {
    value: "<spec>",
    shown: "the wrapper's choice: 128x128x8/u8, or 64x128, 128x64 or 64x64 where its wave model finds a " +
      "small product faster with it (attention's 64-column products: 128x64)",
    help: "The tiled kernel's split BMxBNxBK[/t16][/uN]; also keeps f16 operands off the matrix units. " +
      "With --step or --profile: every product of the step on the tiled kernel uses it; with --kernels, " +
      "attention's per-head products.",
    parse: parsedBy(parseMatmulTile),
  },
  matrixTile: {
    value: "<spec>",
    shown: "sg2x2/f4x4/k2",
    help: "The subgroup-matrix kernel's split sgRxC/fRxC/kN (subgroups, fragments per subgroup, matrix " +
      "steps per K tile), for f16 operands on a device with subgroup matrices.",
    parse: parsedBy(parseMatrixTile),
  },
  splits: { value: "<n>", shown: "the wrapper's choice", help: "Split K n ways.", parse: positiveInteger },
  layout: {
    value: "<list>",
    default: LAYOUTS,
    shown: "NN,NT,TN",
    help: "Comma-separated layouts among NN, NT and TN.",
    parse: listOf(oneOf(LAYOUTS)),
  },
  only: {
    value: "<list>",
    shown: "all",
    help: "Comma-separated product names among qkv, attn_out, ffn_up, ffn_down, mlm_decoder and cube; with " +
      "--kernels, kernel cases by name.",
    parse: listOf(text),
  },
  shape: { value: "MxNxK", shown: "the model's", help: "One product of this shape.", parse: shape },
  warmup: {
    value: "<s>",
    default: 0.5,
    help: "Seconds of warm-up per product or kernel.",
    parse: positiveNumber,
  },
  time: {
    value: "<s>",
    default: 0.3,
    help: "Seconds of the timed run per product or kernel.",
    parse: positiveNumber,
  },
  operands: {
    value: "f32|f16",
    default: "f32",
    help: "How the products' A and B are stored (C stays f32); f16 runs on the matrix units where the " +
      "device has them.",
    parse: oneOf(["f32", "f16"]),
  },
  step: { switch: true, help: "Time the full training step instead (forward, backward, clipping, AdamW)." },
  preset: {
    value: "<name>",
    default: "crammed",
    help: "With --step, --kernels or --profile: the model.",
    parse: oneOf(Object.keys(presets)),
  },
  microBatch: {
    value: "<list>",
    shown: "128 (2 with --small)",
    help: "With --step, --kernels or --profile: comma-separated micro-batch sizes.",
    parse: listOf(positiveInteger),
  },
  accumulate: {
    value: "<n>",
    default: 1,
    help: "With --step: micro-batches per optimizer step.",
    parse: positiveInteger,
  },
  steps: {
    value: "<n>",
    default: 10,
    help: "With --step or --profile: timed steps.",
    parse: positiveInteger,
  },
  precision: {
    value: "<list>",
    default: ["f32"],
    shown: "f32",
    help: "With --step or --profile: f32, f16 or f32,f16 (pretrain's --precision).",
    parse: listOf(oneOf(["f32", "f16"])),
  },
  paced: {
    value: "true|false",
    shown: "true on Dawn, whose waits for queued work resolve late; false on the built-in backend",
    help: "With --step: whether the host waits only for steps its model of the GPU's queue says are done.",
    parse: (text, flag) => oneOf(["true", "false"])(text, flag) === "true",
  },
  peer: {
    value: "<torch_peer.py>",
    help: "With --step: then run the PyTorch peer's step benchmark (python3 <path> bench, strict fp32 and " +
      "bf16) at each micro-batch, and print our tokens/s over its. The peer times the crammed model at " +
      "--accumulate 1, on CUDA.",
    parse: text,
  },
  kernels: {
    switch: true,
    help: "Time every non-matmul kernel of the step at the model's shapes, against the bandwidth.",
  },
  bandwidth: {
    value: "<bytes/s>",
    shown: "the rate of the copy case, an f32 copy measured first on this device",
    help: "With --kernels: the bandwidth that vs_bandwidth compares with.",
    parse: positiveNumber,
  },
  softmaxLanes: {
    value: "<n>",
    shown: "32 in both passes with subgroups; without them, 8 in the forward and 32 in the backward",
    help: "With --kernels: invocations per row of scores in the softmax passes, for tuning (a power of two " +
      "up to 256).",
    parse: positiveInteger,
  },
  profile: {
    switch: true,
    help: "GPU time of every dispatch of the training step by kernel, and GPU busy over wall time.",
  },
  dispatches: { switch: true, help: "With --profile: also one line per dispatch, in step order." },
} as const satisfies OptionTable;

const USAGE = `Usage: deno task bench [options]

Times the model's matrix products (or one --shape), the training step (--step), every other kernel of the
step (--kernels) or the step's dispatches (--profile). Prints one JSON line per measurement.`;

async function main(args: string[]): Promise<void> {
  const { values, help } = parseCommandLine(TABLE, args);
  if (help) {
    console.log(usageText(USAGE, TABLE));
    return;
  }
  const backend = values.gpu;
  const modes = ["step", "kernels", "profile"] as const;
  if (modes.filter((m) => values[m]).length > 1) {
    throw new UsageError(`--step, --kernels and --profile: expected at most one of them`);
  }
  // --small stands for the small preset at micro-batch 2 in the kernel and profile modes.
  const small = values.small && (values.kernels || values.profile);
  const presetName = small && values.preset === "crammed" ? "small" : values.preset;
  if (values.peer !== undefined && (!values.step || presetName !== "crammed" || values.accumulate !== 1)) {
    throw new UsageError(
      "--peer: expected --step with the crammed preset at --accumulate 1, the peer's step",
    );
  }
  const microBatches = values.microBatch ?? [small ? 2 : 128];
  const config = presets[presetName];
  const precisions = values.precision;
  // With --tile, the JSON lines of the step, the profile and the kernels say which tile the products used.
  const tileTag = values.tile ? { tile: formatMatmulTile(values.tile) } : {};
  if (values.kernels) {
    const options = {
      only: values.only,
      bandwidth: values.bandwidth,
      softmaxLanes: values.softmaxLanes,
      warmupSeconds: values.warmup,
      timedSeconds: values.time,
    };
    const gpu = await requestGpu({ backend, subgroups: values.subgroups });
    console.error(`# ${describeGpu(gpu)}, ${presetName}`);
    const k = new Kernels(gpu);
    if (values.tile) useMatmulTile(k, values.tile);
    for (const microBatch of microBatches) {
      for await (const result of benchKernels(k, config, microBatch, options)) {
        console.log(JSON.stringify({ micro_batch: microBatch, ...tileTag, ...result }));
      }
    }
    return;
  }
  if (values.profile) {
    const gpu = await requestGpu({ backend, subgroups: values.subgroups });
    console.error(`# ${describeGpu(gpu)}, ${presetName}`);
    if (!gpu.hasTimestamps) {
      console.error(
        "# the adapter has no timestamp-query: only wall-time figures, no per-dispatch GPU times",
      );
    }
    const k = new Kernels(gpu);
    if (values.tile) useMatmulTile(k, values.tile);
    for (const precision of precisions) {
      for (const microBatch of microBatches) {
        const profile = await profileStep(k, config, { microBatch, steps: values.steps, precision });
        const tag = { precision, micro_batch: microBatch };
        for (const line of profile.kernels) console.log(JSON.stringify({ ...tag, ...line }));
        if (values.dispatches) {
          for (const line of profile.dispatches) console.log(JSON.stringify({ ...tag, ...line }));
        }
        console.log(JSON.stringify({ preset: presetName, precision, ...tileTag, ...profile.step }));
      }
    }
    return;
  }
  if (values.step) {
    const gpu = await requestGpu({ backend, subgroups: values.subgroups });
    console.error(`# ${describeGpu(gpu)}`);
    const k = new Kernels(gpu);
    if (values.tile) useMatmulTile(k, values.tile);
    const results: StepBenchResult[] = [];
    for (const precision of precisions) {
      let best: { micro_batch: number; tokens_per_s: number } | undefined;
      for (const microBatch of microBatches) {
        const result = await benchStep(k, config, {
          microBatch,
          accumulate: values.accumulate,
          timedSteps: values.steps,
          precision,
          paced: values.paced,
        });
        console.log(JSON.stringify({ preset: values.preset, backend: gpu.backend, ...tileTag, ...result }));
        results.push(result);
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
    if (values.peer !== undefined) {
      // After all of ours, so that the two never share the GPU.
      for (const microBatch of microBatches) {
        const peer = await runPeerBench({ script: values.peer, batch: microBatch, steps: values.steps });
        for (const line of peer) console.log(JSON.stringify(line));
        for (const result of results.filter((r) => r.micro_batch === microBatch)) {
          console.log(JSON.stringify({ backend: gpu.backend, ...tileTag, ...versusPeer(result, peer) }));
        }
      }
    }
    return;
  }
  const layouts = values.layout;
  let shapes: MatmulShape[];
  if (values.shape) {
    const { m, n, k } = values.shape;
    shapes = layouts.map((layout) => ({ name: "custom", layout, m, n, k }));
  } else {
    const only = values.only;
    shapes = modelShapes(values.small ? SMALL_DIMS : CRAMMED_DIMS)
      .filter((s) => layouts.includes(s.layout) && (!only || only.includes(s.name)));
    if (shapes.length === 0) throw new UsageError(`--only ${only?.join(",")}: no product has these names`);
  }
  const options = {
    tile: values.tile,
    matrixTile: values.matrixTile,
    operands: values.operands,
    splits: values.splits,
    warmupSeconds: values.warmup,
    timedSeconds: values.time,
  };
  const gpu = await requestGpu({ backend, subgroups: values.subgroups });
  console.error(`# ${describeGpu(gpu)}`);
  for await (const result of benchMatmul(new Kernels(gpu), shapes, options)) {
    console.log(JSON.stringify({ backend: gpu.backend, ...result }));
  }
}

/** The adapter, its backend and whether the reductions use subgroups (the header of every benchmark). */
function describeGpu(gpu: Gpu): string {
  return `${gpu.name} (${gpu.backend}, ${gpu.hasSubgroups ? "subgroup" : "workgroup-memory"} reductions)`;
}

if (import.meta.main) await runTask(() => main(Deno.args));
