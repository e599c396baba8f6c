/**
 * Benchmarks. Prints one JSON line per measurement to stdout (the adapter's name to stderr):
 *
 *   deno task bench [--small] [--tile 64x128x8/u2] [--splits N] [--layout NN,NT,TN] [--only qkv,cube]
 *                   [--shape MxNxK] [--warmup 0.5] [--time 0.3]
 *   deno task bench --step [--preset crammed] [--micro-batch 128,256] [--accumulate 1] [--steps 10]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { GpuError, requestGpu } from "../src/gpu/device.ts";
import { Kernels } from "../src/gpu/kernels.ts";
import {
  benchMatmul,
  CRAMMED_DIMS,
  type MatmulLayout,
  type MatmulShape,
  modelShapes,
  SMALL_DIMS,
} from "../src/bench/matmul.ts";
import { parseMatmulTile } from "../src/model/layers/matmul.ts";
import { presets } from "../src/model/config.ts";
import { benchStep } from "../src/bench/step.ts";

const USAGE = `usage: deno task bench [options]
  --small          the model's products scaled down (tokens / 64, features / 8), for the CPU adapter
  --tile SPEC      tiled-kernel split BMxBNxBK[/t16][/uN] instead of the per-layout default
  --splits N       split K N ways instead of the wrapper's choice
  --layout LIST    comma-separated layouts among NN,NT,TN (default all)
  --only LIST      comma-separated product names among qkv,attn_out,ffn_up,ffn_down,mlm_decoder,cube
  --shape MxNxK    one product of this shape instead of the model's
  --warmup S       seconds of warm-up per product (default 0.5)
  --time S         seconds of the timed run per product (default 0.3)
  --step           time the full training step instead (forward, backward, clipping, AdamW)
  --preset NAME    with --step: the model (default crammed)
  --micro-batch L  with --step: comma-separated micro-batch sizes (default 128)
  --accumulate N   with --step: micro-batches per optimizer step (default 1)
  --steps N        with --step: timed steps (default 10)`;

function positive(option: string, value: string): number {
  const v = Number(value);
  if (!(v > 0)) throw new GpuError(`--${option} ${value}: expected a positive number`);
  return v;
}

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      small: { type: "boolean", default: false },
      tile: { type: "string" },
      splits: { type: "string" },
      layout: { type: "string", default: "NN,NT,TN" },
      only: { type: "string" },
      shape: { type: "string" },
      warmup: { type: "string", default: "0.5" },
      time: { type: "string", default: "0.3" },
      step: { type: "boolean", default: false },
      preset: { type: "string", default: "crammed" },
      "micro-batch": { type: "string", default: "128" },
      accumulate: { type: "string", default: "1" },
      steps: { type: "string", default: "10" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.step) {
    const config = presets[values.preset];
    if (!config) {
      throw new GpuError(`--preset ${values.preset}: expected one of ${Object.keys(presets).join(", ")}`);
    }
    const gpu = await requestGpu();
    console.error(`# ${gpu.name}`);
    const k = new Kernels(gpu);
    for (const size of values["micro-batch"].split(",")) {
      const result = await benchStep(k, config, {
        microBatch: positive("micro-batch", size),
        accumulate: positive("accumulate", values.accumulate),
        timedSteps: positive("steps", values.steps),
      });
      console.log(JSON.stringify({ preset: values.preset, ...result }));
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
    splits: values.splits === undefined ? undefined : positive("splits", values.splits),
    warmupSeconds: positive("warmup", values.warmup),
    timedSeconds: positive("time", values.time),
  };
  const gpu = await requestGpu();
  console.error(`# ${gpu.name}`);
  for await (const result of benchMatmul(new Kernels(gpu), shapes, options)) {
    console.log(JSON.stringify(result));
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
