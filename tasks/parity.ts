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
import {
  type OptionTable,
  type OptionValues,
  parseCommandLine,
  runTask,
  UsageError,
  usageText,
} from "../src/args.ts";
import { nonEmpty, oneOf, positiveInteger, positiveNumber, text } from "../src/arg_values.ts";
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

const WRITE_OPTIONS = {
  out: {
    value: "<dir>",
    required: true,
    help: "Where the model, batch and report go.",
    parse: nonEmpty("a folder path"),
  },
  engine: {
    value: "reference|gpu",
    default: "reference",
    help: "Whose loss and gradients: the float64 reference's or the WebGPU engine's.",
    parse: oneOf(["reference", "gpu"]),
  },
  precision: {
    value: "f32|f16",
    default: "f32",
    help: "With --engine gpu: f16 storage (on a device with subgroup matrices, every product on them).",
    parse: oneOf(["f32", "f16"]),
  },
  preset: { value: "<name>", default: "tiny", help: "The model.", parse: oneOf(Object.keys(presets)) },
  ffn: {
    value: "<kind>",
    shown: "the preset's",
    help: "The feed-forward block: gelu or gelu-glu.",
    parse: text,
  },
  positions: {
    value: "<kind>",
    shown: "the preset's",
    help: "The position embedding: scaled-sinusoidal or learned.",
    parse: text,
  },
  batch: { value: "<n>", default: 4, help: "Sequences in the batch.", parse: positiveInteger },
  seq: {
    value: "<n>",
    shown: "16, or the preset's maximum if smaller",
    help: "Tokens per sequence.",
    parse: positiveInteger,
  },
  seed: { value: "<n>", default: 1, help: "Seeds the model and the batch.", parse: positiveInteger },
} as const satisfies OptionTable;

const CHECK_OPTIONS = {
  ...WRITE_OPTIONS,
  peerScript: {
    value: "<path>",
    required: true,
    help: "The path of torch_peer.py, run with python3.",
    parse: nonEmpty("a file path"),
  },
  device: { value: "cuda|cpu", shown: "the peer's", help: "The peer's device.", parse: text },
  float64: { switch: true, help: "The peer computes in float64." },
  tolerance: {
    value: "<x>",
    default: 1e-5,
    help: "The largest relative difference that passes.",
    parse: positiveNumber,
  },
} as const satisfies OptionTable;

const COMPARE_OPTIONS = {
  reference: { value: "<file>", required: true, help: "Our reference.json.", parse: text },
  peer: { value: "<file>", required: true, help: "The peer's JSON (torch_peer.py parity).", parse: text },
  tolerance: {
    value: "<x>",
    default: 1e-6,
    help: "The largest relative difference that passes: 1e-6 against the peer's --float64, about 1e-4 " +
      "against its float32.",
    parse: positiveNumber,
  },
} as const satisfies OptionTable;

const WRITE_USAGE = `Usage: parity.ts write --out <dir> [options]

Writes a fresh model, a random batch and our loss and gradients for the peer to check.`;
const COMPARE_USAGE = `Usage: parity.ts compare --reference <file> --peer <file> [options]

Compares two reports.`;
const CHECK_USAGE = `Usage: parity.ts check --out <dir> --peer-script <path> [options]

Writes, runs the peer on what was written, and compares.`;
const USAGE =
  "Usage: parity.ts <write|compare|check> [options] (parity.ts <command> --help lists its options)";

type WriteValues = OptionValues<typeof WRITE_OPTIONS>;

async function write(values: WriteValues): Promise<{ out: string; report: ParityReport }> {
  if (values.precision === "f16" && values.engine !== "gpu") {
    throw new UsageError("--precision f16 needs --engine gpu (the reference is float64)");
  }
  const preset = presets[values.preset];
  const config = validateConfig(
    {
      ...preset,
      ...(values.ffn && { ffn: values.ffn }),
      ...(values.positions && { positions: values.positions }),
    } as ModelConfig,
    "options",
  );
  const { batch, seed } = values;
  const seq = values.seq ?? Math.min(16, config.maxSeqLen);
  if (seq > config.maxSeqLen) {
    throw new UsageError(`--seq: expected at most the preset's maxSeqLen ${config.maxSeqLen}, got ${seq}`);
  }

  const params = initParams(config, { seed });
  const parityBatch = randomParityBatch(config, { batch, seq, seed });
  const report = values.engine === "gpu"
    ? await gpuParityReport(config, params, parityBatch, values.precision)
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
async function check(values: OptionValues<typeof CHECK_OPTIONS>): Promise<boolean> {
  const { out, report } = await write(values);
  const peerArgs = [values.peerScript, "parity", "--checkpoint", `${out}/model.safetensors`];
  peerArgs.push("--batch", `${out}/batch.safetensors`);
  if (values.device) peerArgs.push("--device", values.device);
  if (values.float64) peerArgs.push("--float64");
  const result = await new Deno.Command("python3", { args: peerArgs, stderr: "inherit" }).output();
  if (!result.success) throw new Error(`python3 ${peerArgs.join(" ")} failed (exit ${result.code})`);
  const peerText = new TextDecoder().decode(result.stdout);
  await writeFileAtomic(`${out}/peer.json`, new TextEncoder().encode(peerText));
  return printComparison(report, parseReport(peerText, `${out}/peer.json`), values.tolerance);
}

async function compare(values: OptionValues<typeof COMPARE_OPTIONS>): Promise<boolean> {
  return printComparison(await readReport(values.reference), await readReport(values.peer), values.tolerance);
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

/** The command line's values by `table`, or undefined after printing the usage text for --help. */
function commandLine<T extends OptionTable>(
  usage: string,
  table: T,
  args: string[],
): OptionValues<T> | undefined {
  const { values, help } = parseCommandLine(table, args);
  if (help) console.log(usageText(usage, table));
  return help ? undefined : values;
}

/** Runs the command that `args` name; false when a comparison failed. */
async function main(args: string[]): Promise<boolean> {
  const [command, ...rest] = args;
  switch (command) {
    case "write": {
      const values = commandLine(WRITE_USAGE, WRITE_OPTIONS, rest);
      if (values) printPeerCommands((await write(values)).out);
      return true;
    }
    case "compare": {
      const values = commandLine(COMPARE_USAGE, COMPARE_OPTIONS, rest);
      return !values || await compare(values);
    }
    case "check": {
      const values = commandLine(CHECK_USAGE, CHECK_OPTIONS, rest);
      return !values || await check(values);
    }
    case "-h":
    case "--help":
      console.log(USAGE);
      return true;
    default:
      throw new UsageError(
        `expected a command, write, compare or check, got ${JSON.stringify(command ?? "")}`,
      );
  }
}

if (import.meta.main) await runTask(async () => (await main(Deno.args)) ? 0 : 1);
