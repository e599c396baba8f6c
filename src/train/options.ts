/**
 * The options of `deno task pretrain`: one table (see args.ts) drives the parser, the validation and
 * `--help`, so every option has a default and is documented. Invalid values are one-line `UsageError`s
 * that name the option and what was expected.
 *
 * Four defaults depend on the adapter and are left undefined here ("auto"): the preset, the preset's
 * target batch and mask rate (see `adapterDefaults`) and the micro-batch (see micro_batch.ts: 128 on a
 * GPU, 8 on a CPU adapter, halved until the model fits).
 *
 * @module
 */
import { flagOf, type OptionTable, parseCommandLine, UsageError, usageText } from "../args.ts";
import {
  fail,
  integerFrom,
  nonEmpty,
  nonNegativeInteger,
  numberWhere,
  oneOf,
  positiveInteger,
  positiveNumber,
  text,
  type ValueParser,
} from "../arg_values.ts";
import { type BudgetSpec, formatBudget, parseBudget } from "./budget.ts";
import { CONFIG_LIMITS, presets } from "../model/config.ts";
import { BERT_MASK_RATE } from "./masking.ts";
import { MIN_TRAINED_VOCAB } from "../data/trainer.ts";
import { MAX_SHARD_VOCAB } from "../data/shard.ts";
import type { StorageType } from "../gpu/buffers.ts";
import { GPU_BACKENDS, GPU_BACKENDS_HELP, type GpuBackendChoice } from "../gpu/device.ts";

/** The options of one pretraining run. */
export interface PretrainOptions {
  /** Raw text (.txt, .jsonl, .jsonl.gz) files or tokenized directories; [] = the bundled sample corpus. */
  corpus: string[];
  /** A model preset name; undefined = by adapter (see `adapterDefaults`). */
  preset?: string;
  /** Transformer layers; undefined = the preset's. */
  layers?: number;
  /** Width of the hidden states; undefined = the preset's. */
  hidden?: number;
  /** Attention heads; undefined = the preset's. */
  heads?: number;
  /** Width of the FFN's up projection; undefined = the preset's. */
  intermediate?: number;
  /** How long to train: seconds or optimizer steps. */
  budget: BudgetSpec;
  /** The run folder. */
  out: string;
  /** A run folder or checkpoint folder to continue from. */
  resume?: string;
  /** The peak of the one-cycle learning rate. */
  peakLr: number;
  /** Learning rate at the first step, as a fraction of the peak. */
  lrStart: number;
  /** Fraction of the budget at which the learning rate peaks. */
  lrPeakAt: number;
  /** Target sequences per optimizer step; undefined = by preset (see `adapterDefaults`). */
  batch?: number;
  /** Sequences per micro-batch; undefined = 128 on a GPU, 8 on a CPU adapter, halved until it fits. */
  microBatch?: number;
  /** Fraction of the budget over which the batch ramps from one micro-batch to the target. */
  ramp: number;
  /**
   * How activations and the products' weight copy are stored (f32 master weights either way); undefined =
   * by device (see {@linkcode devicePrecision}).
   */
  precision?: StorageType;
  /** Which WebGPU implementation trains: Deno's built-in, Dawn, or auto (see requestGpu). */
  gpu: GpuBackendChoice;
  /** Fraction of the tokens MLM predicts; undefined = the preset's (see `adapterDefaults`). */
  maskRate?: number;
  /**
   * Dropout probability in the encoder (embeddings, attention probabilities, block outputs); 0, the
   * recipe's, plans none.
   */
  dropout: number;
  /** Tokens per sequence; undefined = the preset's maximum. */
  seqLen?: number;
  /** Vocabulary size; undefined = the preset's (or, for tokenized input, the vocabulary's). */
  vocabSize?: number;
  /** Seeds the init, the data order and the masks. */
  seed: number;
  /** Optimizer steps between records in metrics.jsonl (and plain progress lines). */
  logEvery: number;
  /** Minutes between checkpoints. */
  checkpointEvery: number;
  /** Checkpoints kept in the run folder, newest first; 0 = all. */
  keepCheckpoints: number;
  /** Consecutive non-finite steps (each skipped) that stop the run. */
  maxNonfinite: number;
}

/** The default precision on a device: f16 where the products run on its matrix units, else f32. */
export function devicePrecision(device: { subgroupMatrix: unknown }): StorageType {
  return device.subgroupMatrix ? "f16" : "f32";
}

/**
 * Target sequences per optimizer step by preset: the recipe's 4096 for the day-long crammed model, 512 for
 * compact (its 10-minute H200 run), 32 for the CPU-sized ones.
 */
const PRESET_BATCH: Readonly<Record<string, number>> = { crammed: 4096, compact: 512, small: 32, tiny: 32 };

/**
 * Fraction of tokens to predict by preset: BERT's 15% (the recipe's) except for compact, where 30% scored
 * 56.0 on GLUE-5 after 5 minutes on an H100 against 53.3 at 15%, with a held-out MLM loss of 2.785 against
 * 2.870 (README, "Masking rate and dropout for a short budget"). The CPU-sized presets are not measured.
 */
const PRESET_MASK_RATE: Readonly<Record<string, number>> = { compact: 0.3 };

/**
 * The defaults that depend on the adapter and the preset: a model for minutes of training (`small` on a CPU
 * adapter, `compact` on a GPU; the recipe's `crammed` is for budgets of hours), and the preset's batch and
 * mask rate.
 */
export function adapterDefaults(
  adapter: { isCpu: boolean },
  preset = adapter.isCpu ? "small" : "compact",
): { preset: string; batch: number; maskRate: number } {
  return { preset, batch: PRESET_BATCH[preset] ?? 32, maskRate: PRESET_MASK_RATE[preset] ?? BERT_MASK_RATE };
}

/** A by-preset default as `--help` shows it, from its table: "the preset's: crammed 4096, ...". */
function byPreset(table: Readonly<Record<string, number>>, others?: number): string {
  const values = Object.entries(table).map(([preset, value]) => `${preset} ${value}`);
  if (others !== undefined) values.push(`others ${others}`);
  return `the preset's: ${values.join(", ")}`;
}

type Key = keyof PretrainOptions;

const fraction = numberWhere("a fraction from 0 to 1", (n) => n >= 0 && n <= 1);

/** A model width: the kernels read rows as vec4s, and the gated FFN splits its rows in halves of them. */
function widthUpTo(max: number): ValueParser<number> {
  return numberWhere(
    `a multiple of 8 from 8 to ${max}`,
    (n) => Number.isSafeInteger(n) && n >= 8 && n <= max && n % 8 === 0,
  );
}

/** A positive time or step budget, e.g. 90s, 10m, 1h30m, 24h or 500steps. */
const budget: ValueParser<BudgetSpec> = (text, flag) => {
  const budget = parseBudget(text);
  if (!budget || ("seconds" in budget ? budget.seconds : budget.steps) <= 0) {
    fail(flag, "a positive duration such as 90s, 10m, 1h30m or 24h, or a step count such as 500steps", text);
  }
  return budget;
};

/** Pretrain's options; the keys are those of {@linkcode PretrainOptions}, and --overwrite. */
const TABLE = {
  corpus: {
    value: "<path>",
    shown: "the sample corpus that comes with the install",
    help: "Raw text (.txt, .jsonl, .jsonl.gz with a text field) to tokenize, or tokenized folders of one " +
      "vocabulary (manifest.json and shards), trained on as one dataset. Repeat it, or list paths after " +
      "the options.",
    multiple: true,
    parse: text,
  },
  preset: {
    value: "<name>",
    shown: "small on a CPU adapter, compact on a GPU",
    help: `The model: ${Object.keys(presets).join(", ")}.`,
    parse: oneOf(Object.keys(presets)),
  },
  layers: {
    value: "<n>",
    shown: "the preset's",
    help: "Transformer layers: the preset's model made deeper or shallower.",
    parse: integerFrom(1, CONFIG_LIMITS.layers),
  },
  hidden: {
    value: "<n>",
    shown: "the preset's",
    help: "Width of the hidden states (a multiple of the heads).",
    parse: widthUpTo(CONFIG_LIMITS.hidden),
  },
  heads: {
    value: "<n>",
    shown: "the preset's",
    help: "Attention heads.",
    parse: integerFrom(1, CONFIG_LIMITS.heads),
  },
  intermediate: {
    value: "<n>",
    shown: "the preset's",
    help: "Width of the feed-forward layer's up projection.",
    parse: widthUpTo(CONFIG_LIMITS.intermediate),
  },
  budget: {
    value: "<time>",
    default: { seconds: 300 },
    shown: "5m",
    help: "Training time, e.g. 90s, 10m, 1h30m, 24h, counted from the first step (tokenizing and setup " +
      "do not count), or a number of optimizer steps, e.g. 500steps. With --resume: a larger budget of the " +
      "same kind extends the run; the learning-rate and batch schedules are then functions of the new " +
      "budget (at 10 of 20 minutes the learning rate is where a 20-minute run's is at its middle).",
    parse: budget,
  },
  out: {
    value: "<dir>",
    shown: "runs/<date>-<time>",
    help: "The run folder: checkpoints, metrics.jsonl, loss.svg, summary.json. With --resume: continue " +
      "in this folder instead of the resumed one (needed to continue from a checkpoint that is not the newest).",
    parse: nonEmpty("a folder path"),
  },
  resume: {
    value: "<dir>",
    shown: "none",
    help: "Continue a run from its newest checkpoint (a run folder) or from a given checkpoint folder, " +
      "with its saved options; only --corpus, --out, --budget, --gpu and the logging and checkpoint " +
      "options may change.",
    parse: nonEmpty("a run or checkpoint folder"),
  },
  peakLr: {
    value: "<lr>",
    default: 1e-3,
    shown: "1e-3",
    help: "The peak of the one-cycle learning rate.",
    parse: positiveNumber,
  },
  lrStart: {
    value: "<fraction>",
    default: 0.25,
    help: "The learning rate at the first step, as a fraction of the peak.",
    parse: fraction,
  },
  lrPeakAt: {
    value: "<fraction>",
    default: 0.75,
    help: "The fraction of the budget at which the learning rate peaks; it then falls linearly to 0 at " +
      "the end of the budget.",
    parse: numberWhere("a fraction from 0 to below 1", (n) => n >= 0 && n < 1),
  },
  batch: {
    value: "<n>",
    shown: byPreset(PRESET_BATCH),
    help: "Target sequences per optimizer step, reached by accumulating micro-batches.",
    parse: positiveInteger,
  },
  microBatch: {
    value: "<n>",
    shown: "128 on a GPU, 8 on a CPU adapter, halved until it fits",
    help: "Sequences per forward/backward pass; must divide --batch.",
    parse: positiveInteger,
  },
  ramp: {
    value: "<fraction>",
    default: 0.6,
    help: "The fraction of the budget over which the batch grows linearly from one micro-batch to " +
      "--batch (0: full batch from the start).",
    parse: fraction,
  },
  precision: {
    value: "f32|f16",
    shown: "f16 where the products run on tensor cores, else f32",
    help: "f16 stores the activations and a copy of the weights for the matrix products as f16 " +
      "(f32 master weights and optimizer, dynamic loss scaling; needs shader-f16); on a device with " +
      "subgroup matrices the products then run on its tensor cores, f16 x f16 summed in f32.",
    parse: oneOf(["f32", "f16"]),
  },
  gpu: {
    value: GPU_BACKENDS.join("|"),
    default: "auto",
    help: GPU_BACKENDS_HELP,
    parse: oneOf(GPU_BACKENDS),
  },
  maskRate: {
    value: "<fraction>",
    shown: byPreset(PRESET_MASK_RATE, BERT_MASK_RATE),
    help: "Fraction of tokens to predict; of those 80% become [MASK], 10% a random token, 10% stay.",
    parse: numberWhere("a fraction above 0 and below 1", (n) => n > 0 && n < 1),
  },
  dropout: {
    value: "<fraction>",
    default: 0,
    help: "Dropout in the encoder (after the embeddings, on the attention probabilities and on each " +
      "block's output), as in finetuning. The recipe has none: it never sees a token twice; a run that " +
      "repeats its data may want some.",
    parse: numberWhere("a fraction from 0 to below 1", (n) => n >= 0 && n < 1),
  },
  seqLen: { value: "<n>", shown: "the preset's", help: "Tokens per sequence.", parse: integerFrom(8) },
  vocabSize: {
    value: "<n>",
    shown: "the preset's",
    help: "Vocabulary size of the tokenizer trained on a raw corpus (tokenized input brings its own).",
    parse: integerFrom(MIN_TRAINED_VOCAB, MAX_SHARD_VOCAB),
  },
  seed: {
    value: "<n>",
    default: 0,
    help: "Seeds the initialization, the data order and the masks.",
    parse: integerFrom(0, 2 ** 32 - 1),
  },
  logEvery: {
    value: "<steps>",
    default: 10,
    help: "Optimizer steps between records in metrics.jsonl.",
    parse: positiveInteger,
  },
  checkpointEvery: {
    value: "<minutes>",
    default: 10,
    help: "Minutes between checkpoints (one is also written at the end and on Ctrl-C).",
    parse: numberWhere("a positive number of minutes", (n) => n > 0),
  },
  keepCheckpoints: {
    value: "<n>",
    default: 2,
    help: "How many checkpoints to keep, newest first (0: all).",
    parse: nonNegativeInteger,
  },
  maxNonfinite: {
    value: "<n>",
    default: 10,
    help: "Consecutive steps with a non-finite loss or gradient (each skipped) that stop the run.",
    parse: positiveInteger,
  },
  overwrite: {
    switch: true,
    help: "Start a fresh run in an --out that holds an earlier one: the new dataset is tokenized first, " +
      "then the earlier run's dataset, checkpoints, metrics and summary are replaced.",
  },
} as const satisfies OptionTable;

/** The options that may be given with --resume: they do not change what the run computes. */
const RESUMABLE: ReadonlySet<string> = new Set<Key>([
  "corpus",
  "budget",
  "out",
  "resume",
  "gpu",
  "logEvery",
  "checkpointEvery",
  "keepCheckpoints",
  "maxNonfinite",
]);

/** The option keys of {@linkcode PretrainOptions}, in the table's order. */
const KEYS = Object.keys(TABLE).filter((key) => key !== "overwrite") as Key[];

function timestamp(now: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}${two(now.getMonth() + 1)}${two(now.getDate())}-` +
    `${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}`;
}

/** Options as parsed, which of them the command line gave, and whether it asked for --help or --overwrite. */
export interface ParsedOptions {
  options: PretrainOptions;
  given: ReadonlySet<Key>;
  help: boolean;
  /** A fresh run may replace the earlier run in its --out (see helpText). */
  overwrite: boolean;
}

/**
 * Parses pretrain's command line. Paths after the options are corpus paths too, so a shell glob
 * works: `--corpus data/*.jsonl.gz`. `now` names the default run folder.
 */
export function parseOptions(args: readonly string[], now = new Date()): ParsedOptions {
  const table = { ...TABLE, out: { ...TABLE.out, default: `runs/${timestamp(now)}` } };
  const { values, given, positionals, help } = parseCommandLine(table, args, { positionals: true });
  const { overwrite, ...rest } = values;
  const options: PretrainOptions = { ...rest, corpus: [...values.corpus, ...positionals] };
  const givenKeys = new Set([...given].filter((key): key is Key => key !== "overwrite"));
  if (positionals.length > 0) givenKeys.add("corpus");
  if (options.resume !== undefined && overwrite) {
    throw new UsageError("--overwrite cannot be given with --resume: a resumed run continues its folder");
  }
  if (options.resume !== undefined) {
    const fixed = [...givenKeys].find((key) => !RESUMABLE.has(key));
    if (fixed) {
      throw new UsageError(
        `${flagOf(fixed)} cannot be given with --resume: a resumed run keeps its saved options`,
      );
    }
  }
  if (options.batch !== undefined && options.microBatch !== undefined) {
    checkBatch(options.batch, options.microBatch);
  }
  return { options, given: givenKeys, help, overwrite };
}

/** Throws unless the target batch is a whole number of micro-batches. */
export function checkBatch(batch: number, microBatch: number): void {
  if (batch % microBatch !== 0) {
    throw new UsageError(`--batch ${batch} must be a multiple of --micro-batch ${microBatch}`);
  }
}

/**
 * The options of a resumed run: those saved in its checkpoint, with the resumable options the
 * command line gave (corpus location, run folder, logging, checkpointing) taking their place. It
 * writes to `runDir`, the folder that holds the checkpoint, unless --out names another.
 */
export function resumeOptions(saved: PretrainOptions, given: ParsedOptions, runDir: string): PretrainOptions {
  const options = { ...saved, out: runDir, resume: given.options.resume };
  const record = options as unknown as Record<Key, unknown>;
  for (const key of given.given) record[key] = given.options[key];
  return options;
}

/** The command-line arguments that reproduce `options` (undefined "auto" values are left out). */
export function toArgs(options: PretrainOptions): string[] {
  const args: string[] = [];
  for (const key of KEYS) {
    const value = options[key];
    if (value === undefined) continue;
    if (key === "corpus") { for (const path of value as string[]) args.push(`--corpus=${path}`); }
    else if (key === "budget") args.push(`--budget=${formatBudget(value as BudgetSpec)}`);
    else args.push(`${flagOf(key)}=${value}`);
  }
  return args;
}

/**
 * Reads options saved as JSON (in a checkpoint's state.json), checking every field as the command
 * line would. Errors start with `source`.
 */
export function optionsFromJson(json: unknown, source: string): PretrainOptions {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new UsageError(`${source}: expected an object of options`);
  }
  const object = json as Record<string, unknown>;
  for (const key of KEYS) {
    const value = object[key];
    if (value === undefined) continue;
    const ok = key === "corpus"
      ? Array.isArray(value) && value.every((path) => typeof path === "string")
      : key === "budget"
      ? typeof value === "object" && value !== null &&
        (typeof (value as { seconds?: unknown }).seconds === "number" ||
          typeof (value as { steps?: unknown }).steps === "number")
      : typeof value === "number" || typeof value === "string";
    if (!ok) throw new UsageError(`${source}: ${key}: unexpected value ${JSON.stringify(value)}`);
  }
  try {
    return parseOptions(toArgs({ ...object, resume: undefined } as PretrainOptions)).options;
  } catch (e) {
    throw new UsageError(`${source}: ${(e as Error).message}`);
  }
}

/** The text of `--help`. */
export function helpText(): string {
  return usageText(
    `Usage: deno task pretrain [options] [corpus paths...]

Trains a BERT-style masked language model from scratch within a time budget and writes the run
folder (checkpoints, metrics.jsonl, loss.svg, summary.json). Ctrl-C saves a checkpoint and stops;
--resume continues.`,
    TABLE,
  );
}

/**
 * A tokenized dataset brings its own sequence length and vocabulary: throws an `UsageError` naming the
 * option when `options` ask for others than `dataset`'s (in `dataDir`).
 */
export function checkDatasetOptions(
  options: Pick<PretrainOptions, "seqLen" | "vocabSize">,
  dataset: { seqLen: number; vocabSize: number },
  dataDir: string,
): void {
  const asked = {
    "--seq-len": [options.seqLen, dataset.seqLen],
    "--vocab-size": [options.vocabSize, dataset.vocabSize],
  };
  for (const [flag, [value, actual]] of Object.entries(asked)) {
    if (value !== undefined && value !== actual) {
      throw new UsageError(
        `${flag} ${value}: the dataset in ${dataDir} was tokenized with ${flag} ${actual}`,
      );
    }
  }
}
