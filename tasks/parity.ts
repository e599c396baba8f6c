/**
 * Gradient parity against PyTorch autograd (torch_peer.py), in two steps:
 *
 *   deno run --allow-read --allow-write tasks/parity.ts write --out DIR [--preset tiny] [--ffn gelu|gelu-glu]
 *       [--positions scaled-sinusoidal|learned] [--batch 4] [--seq 16] [--seed 1]
 *     writes DIR/model.safetensors (a freshly initialized model), DIR/batch.safetensors (random ids, 15% of
 *     positions labelled) and DIR/reference.json (the float64 reference's loss and gradients, in the JSON
 *     that the peer prints), then shows the peer command to run where PyTorch is installed.
 *
 *   deno run --allow-read tasks/parity.ts compare --reference DIR/reference.json --peer peer.json
 *       [--tolerance 1e-6]
 *     prints the relative differences (loss; per tensor, gradient norm and first values) and exits 1 if the
 *     worst exceeds the tolerance. Use --tolerance 1e-6 against `parity --float64`, about 1e-4 against the
 *     peer's float32 run.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadCheckpoint, saveBatch, saveCheckpoint } from "../src/model/checkpoint.ts";
import { type ModelConfig, presets, validateConfig } from "../src/model/config.ts";
import { initParams } from "../src/model/init.ts";
import {
  compareParity,
  type ParityReport,
  randomParityBatch,
  referenceParityReport,
} from "../src/reference/parity.ts";
import { writeFileAtomic } from "../src/fs.ts";

const USAGE = "usage: parity.ts write --out DIR [options] | parity.ts compare --reference FILE --peer FILE";

async function write(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      preset: { type: "string", default: "tiny" },
      ffn: { type: "string" },
      positions: { type: "string" },
      batch: { type: "string", default: "4" },
      seq: { type: "string" },
      seed: { type: "string", default: "1" },
    },
  });
  if (!values.out) throw new Error(`--out is required (${USAGE})`);
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
  const report = referenceParityReport(config, params, parityBatch);
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
  console.log(`reference loss ${report.loss} over ${report.predicted_tokens} predicted tokens`);
  console.log("now run, where PyTorch is installed:");
  console.log(
    `  python3 torch_peer.py parity --checkpoint ${values.out}/model.safetensors ` +
      `--batch ${values.out}/batch.safetensors --device cpu --float64 > peer.json`,
  );
  console.log(
    `  deno run --allow-read tasks/parity.ts compare --reference ${values.out}/reference.json --peer peer.json`,
  );
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
  const ours = await readReport(values.reference);
  const peer = await readReport(values.peer);
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
  if (command === "write") await write(args);
  else if (command === "compare") {
    if (!await compare(args)) Deno.exit(1);
  } else throw new Error(USAGE);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  Deno.exit(1);
}
