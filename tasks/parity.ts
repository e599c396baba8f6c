/**
 * Gradient parity against PyTorch autograd (torch_peer.py):
 *
 *   deno run -A tasks/parity.ts write --out DIR [--engine reference|gpu] [--precision f32|f16] [--preset tiny]
 *       [--ffn gelu|gelu-glu] [--positions scaled-sinusoidal|learned] [--batch 4] [--seq 16] [--seed 1]
 *     writes DIR/model.safetensors (a freshly initialized model), DIR/batch.safetensors (random ids, 15% of
 *     positions labelled) and DIR/reference.json (the loss and gradients of the float64 reference, or of
 *     the WebGPU engine with `--engine gpu`, in the JSON that the peer prints), then shows the peer
 *     command to run where PyTorch is installed. `--precision f16` runs the engine with f16 storage (on a
 *     device with subgroup matrices, every product on them), its gradients divided by the loss scale.
 *
 *   deno run --allow-read tasks/parity.ts compare --reference DIR/reference.json --peer peer.json
 *       [--tolerance 1e-6]
 *     prints the relative differences (loss; per tensor, gradient norm and first values) and exits 1 if the
 *     worst exceeds the tolerance. Use --tolerance 1e-6 against `parity --float64`, about 1e-4 against the
 *     peer's float32 run.
 *
 *   deno run -A tasks/parity.ts check --out DIR --peer-script PATH [write options] [--tolerance T]
 *       [--device cuda|cpu] [--float64]
 *     all three in one: write, run `python3 PATH parity` on the files, compare. This is the command for the
 *     GPU machine: `check --engine gpu --preset crammed --batch 32 --seq 128 --peer-script .device/torch_peer.py`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type Batch, loadCheckpoint, saveBatch, saveCheckpoint } from "../src/model/checkpoint.ts";
import { requestGpu } from "../src/gpu/device.ts";
import { readF32, type StorageType, writeBuffer } from "../src/gpu/buffers.ts";
import { Kernels, submitDispatches } from "../src/gpu/kernels.ts";
import { planModel } from "../src/model/model.ts";
import { readLossTotals } from "../src/model/layers/cross_entropy.ts";
import { type ModelConfig, presets, validateConfig } from "../src/model/config.ts";
import { initParams } from "../src/model/init.ts";
import {
  compareParity,
  type ParityReport,
  parityReport,
  randomParityBatch,
  referenceParityReport,
} from "../src/reference/parity.ts";
import { writeFileAtomic } from "../src/fs.ts";

const USAGE = "usage: parity.ts write --out DIR [options] | compare --reference FILE --peer FILE | " +
  "check --out DIR --peer-script PATH [options]";

const WRITE_OPTIONS = {
  out: { type: "string" },
  engine: { type: "string", default: "reference" },
  precision: { type: "string", default: "f32" },
  preset: { type: "string", default: "tiny" },
  ffn: { type: "string" },
  positions: { type: "string" },
  batch: { type: "string", default: "4" },
  seq: { type: "string" },
  seed: { type: "string", default: "1" },
} as const;

type WriteValues = ReturnType<typeof parseArgs<{ options: typeof WRITE_OPTIONS }>>["values"];

async function write(values: WriteValues): Promise<{ out: string; report: ParityReport }> {
  if (!values.out) throw new Error(`--out is required (${USAGE})`);
  if (values.engine !== "reference" && values.engine !== "gpu") {
    throw new Error(`--engine must be reference or gpu, got ${values.engine}`);
  }
  if (values.precision !== "f32" && values.precision !== "f16") {
    throw new Error(`--precision must be f32 or f16, got ${values.precision}`);
  }
  if (values.precision === "f16" && values.engine !== "gpu") {
    throw new Error("--precision f16 needs --engine gpu (the reference is float64)");
  }
  const preset = presets[values.preset!];
  if (!preset) {
    throw new Error(`--preset must be one of ${Object.keys(presets).join(", ")}, got ${values.preset}`);
  }
  const config = validateConfig(
    {
      ...preset,
      ...(values.ffn && { ffn: values.ffn }),
      ...(values.positions && { positions: values.positions }),
    } as ModelConfig,
    "options",
  );
  const batch = positiveInteger("--batch", values.batch!);
  const seq = positiveInteger("--seq", values.seq ?? String(Math.min(16, config.maxSeqLen)));
  if (seq > config.maxSeqLen) {
    throw new Error(`--seq must be at most maxSeqLen ${config.maxSeqLen}, got ${seq}`);
  }
  const seed = positiveInteger("--seed", values.seed!);

  const params = initParams(config, { seed });
  const parityBatch = randomParityBatch(config, { batch, seq, seed });
  const report = values.engine === "gpu"
    ? await gpuParityReport(config, params, parityBatch, values.precision as StorageType)
    : referenceParityReport(config, params, parityBatch);
  await Deno.mkdir(values.out, { recursive: true });
  await saveCheckpoint(`${values.out}/model.safetensors`, config, params);
  await saveBatch(`${values.out}/batch.safetensors`, parityBatch);
  await writeFileAtomic(
    `${values.out}/reference.json`,
    new TextEncoder().encode(JSON.stringify(report) + "\n"),
  );
  // Read the checkpoint back so a writer bug shows here rather than as a peer mismatch.
  const saved = await loadCheckpoint(`${values.out}/model.safetensors`);
  if (!saved.params.every((v, i) => v === params[i])) throw new Error("model.safetensors does not read back");
  console.log(`${values.engine} loss ${report.loss} over ${report.predicted_tokens} predicted tokens`);
  return { out: values.out, report };
}

/** The WebGPU engine's loss and gradients for one micro-batch of `batch`. */
async function gpuParityReport(
  config: ModelConfig,
  params: Float32Array,
  batch: Batch,
  storage: StorageType,
): Promise<ParityReport> {
  const k = new Kernels(await requestGpu());
  const positions = [...batch.labels.keys()].filter((t) => batch.labels[t] >= 0);
  const model = await planModel(k, config, {
    batch: batch.batch,
    seq: batch.seq,
    maxLabels: positions.length,
    storage,
  });
  writeBuffer(k.gpu, model.params, Float32Array.from(params));
  model.writeBatch({
    inputIds: Uint32Array.from(batch.ids),
    labelPositions: Uint32Array.from(positions),
    labelIds: Uint32Array.from(positions, (t) => batch.labels[t]),
  }, 1 / positions.length);
  submitDispatches(k.gpu, model.microBatch);
  const totals = await readLossTotals(k.gpu, model.lossTotals);
  const grads = await readF32(k.gpu, model.grads);
  // With f16 storage the gradients carry the loss scale, which the optimizer divides out.
  const scale = model.lossScale ? (await readF32(k.gpu, model.lossScale, 1))[0] : 1;
  for (let i = 0; i < grads.length; i++) grads[i] /= scale;
  console.log(
    `gpu: ${k.gpu.name} (${k.gpu.backend}), ${storage} storage, matrix units ${
      k.gpu.subgroupMatrix ? "on" : "off"
    }`,
  );
  return parityReport(config, { loss: totals.sum / totals.count, predicted: totals.count, grads });
}

function printPeerCommands(out: string): void {
  console.log("now run, where PyTorch is installed:");
  console.log(
    `  python3 torch_peer.py parity --checkpoint ${out}/model.safetensors ` +
      `--batch ${out}/batch.safetensors --device cpu --float64 > peer.json`,
  );
  console.log(
    `  deno run --allow-read tasks/parity.ts compare --reference ${out}/reference.json --peer peer.json`,
  );
}

/** Writes, runs the peer on what was written, and compares. */
async function check(args: string[]): Promise<boolean> {
  const { values } = parseArgs({
    args,
    options: {
      ...WRITE_OPTIONS,
      "peer-script": { type: "string" },
      device: { type: "string" },
      float64: { type: "boolean", default: false },
      tolerance: { type: "string", default: "1e-5" },
    },
  });
  if (!values["peer-script"]) throw new Error(`--peer-script is required (the path of torch_peer.py)`);
  const tolerance = Number(values.tolerance);
  if (!(tolerance > 0)) throw new Error(`--tolerance must be a positive number, got ${values.tolerance}`);
  const { out, report } = await write(values);
  const peerArgs = [values["peer-script"], "parity", "--checkpoint", `${out}/model.safetensors`];
  peerArgs.push("--batch", `${out}/batch.safetensors`);
  if (values.device) peerArgs.push("--device", values.device);
  if (values.float64) peerArgs.push("--float64");
  const result = await new Deno.Command("python3", { args: peerArgs, stderr: "inherit" }).output();
  if (!result.success) throw new Error(`python3 ${peerArgs.join(" ")} failed (exit ${result.code})`);
  const peerText = new TextDecoder().decode(result.stdout);
  await writeFileAtomic(`${out}/peer.json`, new TextEncoder().encode(peerText));
  return printComparison(report, parseReport(peerText, `${out}/peer.json`), tolerance);
}

async function compare(args: string[]): Promise<boolean> {
  const { values } = parseArgs({
    args,
    options: {
      reference: { type: "string" },
      peer: { type: "string" },
      tolerance: { type: "string", default: "1e-6" },
    },
  });
  if (!values.reference || !values.peer) throw new Error(`--reference and --peer are required (${USAGE})`);
  const tolerance = Number(values.tolerance);
  if (!(tolerance > 0)) throw new Error(`--tolerance must be a positive number, got ${values.tolerance}`);
  return printComparison(await readReport(values.reference), await readReport(values.peer), tolerance);
}

function printComparison(ours: ParityReport, peer: ParityReport, tolerance: number): boolean {
  const result = compareParity(ours, peer);
  console.log(
    `loss: ours ${ours.loss}, peer ${peer.loss}, relative difference ${result.loss.toExponential(2)}`,
  );
  if (!result.predictedTokensMatch) {
    console.log(`predicted tokens differ: ours ${ours.predicted_tokens}, peer ${peer.predicted_tokens}`);
  }
  if (result.missing.length > 0) console.log(`tensors in only one report: ${result.missing.join(", ")}`);
  for (const g of [...result.grads].sort((a, b) => Math.max(b.norm, b.head) - Math.max(a.norm, a.head))) {
    console.log(`  ${g.name}: norm ${g.norm.toExponential(2)}, first values ${g.head.toExponential(2)}`);
  }
  const ok = result.worst <= tolerance;
  console.log(
    `${ok ? "ok" : "FAILED"}: worst relative difference ${
      result.worst.toExponential(2)
    }, tolerance ${tolerance}`,
  );
  return ok;
}

async function readReport(path: string): Promise<ParityReport> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseReport(text, path);
}

function parseReport(text: string, path: string): ParityReport {
  let report: ParityReport;
  try {
    report = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof report?.loss !== "number" || typeof report.grads !== "object" || report.grads === null) {
    throw new Error(`${path}: expected the JSON of torch_peer.py parity (loss, predicted_tokens, grads)`);
  }
  return report;
}

function positiveInteger(option: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`${option} must be a positive integer, got ${text}`);
  }
  return value;
}

try {
  const [command, ...args] = Deno.args;
  if (command === "write") {
    const { out } = await write(parseArgs({ args, options: WRITE_OPTIONS }).values);
    printPeerCommands(out);
  } else if (command === "compare") {
    if (!await compare(args)) Deno.exit(1);
  } else if (command === "check") {
    if (!await check(args)) Deno.exit(1);
  } else throw new Error(USAGE);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
