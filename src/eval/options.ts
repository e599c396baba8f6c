/**
 * The command line of `deno task eval`: its option table (see args.ts), the options it gives, and the
 * help text.
 *
 * @module
 */
import { type OptionTable, parseCommandLine, UsageError, usageText } from "../args.ts";
import {
  fail,
  nonNegativeInteger,
  numberWhere,
  oneOf,
  positiveInteger,
  positiveNumber,
  text,
  type ValueParser,
} from "../arg_values.ts";
import { FINETUNE_DEFAULTS, type FinetuneOptions, NARROW_MODEL_LR } from "./finetune.ts";
import { GLUE_TASKS } from "./glue.ts";
import { POOLINGS } from "../model/head_layout.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { GPU_BACKENDS, GPU_BACKENDS_HELP, type GpuBackendChoice } from "../gpu/device.ts";

/** What `deno task eval` does. */
export interface EvalOptions {
  /** A pretraining run folder (its newest checkpoint) or a checkpoint folder. */
  checkpoint: string;
  /** The GLUE root, in the layout of GLUE's download script. */
  glueDir: string;
  /** The folder of the tokenizer's vocab.txt; default: the run folder. */
  tokenizer?: string;
  /** Where glue.json and the ONNX files go; default: the run folder. */
  out?: string;
  /** Task directory names to evaluate (default: every task found). */
  tasks?: string[];
  /** Finetuning runs per task; the table reports their median. */
  seeds: number;
  /** Use only the first N examples of each file. */
  maxExamples?: number;
  /** The "no pretraining" baseline: the same finetuning from a random init. */
  fromScratch: boolean;
  /** Export to ONNX and score with onnxruntime-web. */
  onnx: boolean;
  /** Also write each task's tokenized examples to <out>/glue-features/ (for peer/finetune_peer.py). */
  writeFeatures: boolean;
  /** Also write each run's trace to <out>/glue-trace/ (for the peer's --lockstep); needs writeFeatures. */
  trace: boolean;
  /** Keep the tasks the run folder's glue.json already holds (same checkpoint and options); run the rest. */
  resume: boolean;
  /** The finetuning recipe; `lr` undefined = by model size (see defaultFinetuneLr). */
  finetune: Omit<FinetuneOptions, "lr"> & { lr?: number };
  /** Which WebGPU implementation finetunes; undefined = `CRAM_GPU`, else the built-in one (see requestGpu). */
  gpu?: GpuBackendChoice;
  /** How activations are stored while finetuning; undefined = by device (see devicePrecision). */
  precision?: StorageType;
  help: boolean;
}

const fraction = numberWhere("a fraction from 0 to below 1", (n) => n >= 0 && n < 1);

/** GLUE task names, comma-separated; each must be a task this evaluation knows. */
const taskList: ValueParser<string[]> = (text, flag) => {
  const names = text.split(",").map((t) => t.trim()).filter((t) => t !== "");
  const known = GLUE_TASKS.map((t) => t.name);
  const unknown = names.find((name) => !known.includes(name));
  return unknown === undefined ? names : fail(flag, `some of ${known.join(", ")}`, unknown);
};

/** `--checkpoint`, as every task that reads a pretrained model takes it. */
export const CHECKPOINT_OPTION = {
  value: "<path>",
  help: "A pretraining run folder (its newest checkpoint) or a checkpoint folder.",
  required: true,
  parse: text,
} as const;

/** `--gpu` of the tasks that run a pretrained model (pretraining's own defaults to auto). */
export const GPU_OPTION = {
  value: GPU_BACKENDS.join("|"),
  shown: "the CRAM_GPU environment variable, else builtin",
  help: GPU_BACKENDS_HELP,
  parse: oneOf(GPU_BACKENDS),
} as const;

/** `--precision` of the tasks that run a pretrained model. */
export const PRECISION_OPTION = {
  value: "f32|f16",
  shown: "f16 where the products run on tensor cores, else f32",
  help: "f16 stores the encoder's activations (and, on tensor cores, a copy of its weights for the " +
    "products) as f16, as pretraining's --precision f16; the weights stay f32, and finetuning also keeps " +
    "its optimizer and head in f32 and scales the loss dynamically.",
  parse: oneOf(["f32", "f16"]),
} as const;

const TABLE = {
  checkpoint: CHECKPOINT_OPTION,
  glueDir: {
    value: "<dir>",
    help: "GLUE data in the layout of GLUE's download script (CoLA/train.tsv, ...).",
    required: true,
    parse: text,
  },
  tokenizer: {
    value: "<dir>",
    shown: "the run folder",
    help: "The folder of the vocab.txt the model was pretrained with.",
    parse: text,
  },
  out: { value: "<dir>", shown: "the run folder", help: "Where the results go.", parse: text },
  tasks: {
    value: "<a,b>",
    shown: "every task found",
    help: "Only these tasks (directory names, e.g. CoLA,SST-2).",
    parse: taskList,
  },
  seeds: {
    value: "<n>",
    default: 1,
    help: "Finetuning runs per task, median reported.",
    parse: positiveInteger,
  },
  seed: {
    value: "<n>",
    default: FINETUNE_DEFAULTS.seed,
    help: "The first run's seed.",
    parse: nonNegativeInteger,
  },
  epochs: {
    value: "<n>",
    default: FINETUNE_DEFAULTS.epochs,
    help: "Passes over each task's training set.",
    parse: positiveInteger,
  },
  batch: {
    value: "<n>",
    default: FINETUNE_DEFAULTS.batch,
    help: "Examples per step.",
    parse: positiveInteger,
  },
  lr: {
    value: "<x>",
    shown:
      `${FINETUNE_DEFAULTS.lr.toExponential()} (BERT-base's) for models 768 wide or wider, ${NARROW_MODEL_LR.toExponential()} for narrower ones`,
    help: "The peak learning rate.",
    parse: positiveNumber,
  },
  warmup: {
    value: "<fraction>",
    default: FINETUNE_DEFAULTS.warmup,
    help: "The fraction of the steps warming up, then cosine decay to 0.",
    parse: fraction,
  },
  dropout: {
    value: "<fraction>",
    default: FINETUNE_DEFAULTS.dropout,
    help: "Dropout in the encoder and the head.",
    parse: fraction,
  },
  pooling: {
    value: "cls|mean",
    default: FINETUNE_DEFAULTS.pooling,
    help: "What the head reads of the final states: the [CLS] state, or the mean over each example's real " +
      "tokens (the crammed-BERT recipe's pooler; pretraining never shows the model [CLS]).",
    parse: oneOf(POOLINGS),
  },
  maxExamples: {
    value: "<n>",
    shown: "all",
    help: "Only the first n examples of each train and dev file (quick runs).",
    parse: positiveInteger,
  },
  fromScratch: {
    switch: true,
    help: 'The "no pretraining" baseline: the same finetuning from a random init.',
  },
  noOnnx: { switch: true, help: "Score with WebGPU only: no export, no onnxruntime-web." },
  writeFeatures: {
    switch: true,
    help: "Also write each task's tokenized examples and the recipe to <out>/glue-features/<task>.json, " +
      "for the PyTorch finetuning peer (peer/finetune_peer.py).",
  },
  trace: {
    switch: true,
    help: "With --write-features: also write each run's start head, data orders, padded widths, dropout " +
      "seeds, per-step losses and dev logits to <out>/glue-trace/<task>-seed<n>.json, for the peer to " +
      "replay it in lockstep (peer/finetune_peer.py --lockstep). Reads the loss after every step: a GPU " +
      "round trip each, so finetuning runs slower.",
  },
  gpu: GPU_OPTION,
  precision: PRECISION_OPTION,
  resume: {
    switch: true,
    help: "Go on from the glue.json an interrupted run left (it is rewritten after every task): keep its " +
      "tasks, evaluate the others; the checkpoint and options must match.",
  },
} as const satisfies OptionTable;

/** The text of `--help`. */
export function evalHelpText(): string {
  return usageText(
    `Usage: deno task eval --checkpoint <run> --glue-dir <dir> [options]

Finetunes the pretrained model on every GLUE task found (WebGPU), exports each finetuned model to
ONNX, scores the dev sets with onnxruntime-web and with WebGPU, and prints a Markdown table next to the
Cramming paper's figures. Writes <out>/glue.json and <out>/glue/<task>-seed<n>.onnx (with
--from-scratch: glue-from-scratch.json and glue-from-scratch/), and <out>/mlm.onnx.`,
    TABLE,
  );
}

/** Parses the command line (without the program name). */
export function parseEvalOptions(args: readonly string[]): EvalOptions {
  const { values: v, help } = parseCommandLine(TABLE, args);
  if (v.trace && !v.writeFeatures) {
    throw new UsageError("--trace needs --write-features: the peer replays a trace on the task's features");
  }
  if (v.trace && v.precision === "f16") {
    throw new UsageError("--trace needs --precision f32: the peer replays a trace in float32");
  }
  if (v.trace && v.fromScratch) {
    throw new UsageError("--trace cannot be given with --from-scratch: the peer replays from the checkpoint");
  }
  return {
    checkpoint: v.checkpoint ?? "",
    glueDir: v.glueDir ?? "",
    tokenizer: v.tokenizer,
    out: v.out,
    tasks: v.tasks,
    seeds: v.seeds,
    maxExamples: v.maxExamples,
    fromScratch: v.fromScratch,
    onnx: !v.noOnnx,
    writeFeatures: v.writeFeatures,
    trace: v.trace,
    resume: v.resume,
    finetune: {
      ...FINETUNE_DEFAULTS,
      seed: v.seed,
      epochs: v.epochs,
      batch: v.batch,
      lr: v.lr,
      warmup: v.warmup,
      dropout: v.dropout,
      pooling: v.pooling,
    },
    gpu: v.gpu,
    precision: v.precision,
    help,
  };
}
