/**
 * The command line of `deno task eval`: parsing and validation with one-line errors that name the
 * option, and the help text.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseArgsMessage } from "../args.ts";
import { FINETUNE_DEFAULTS, type FinetuneOptions } from "./finetune.ts";
import { GLUE_TASKS } from "./glue.ts";

/** A bad command line; the message is one line naming the option. */
export class EvalOptionError extends Error {
  override name = "EvalOptionError";
}

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
  /** Keep the tasks the run folder's glue.json already holds (same checkpoint and options); run the rest. */
  resume: boolean;
  /** The finetuning recipe; `lr` undefined = by model size (see defaultFinetuneLr). */
  finetune: Omit<FinetuneOptions, "lr"> & { lr?: number };
  help: boolean;
}

export const EVAL_HELP = `deno task eval --checkpoint <run> --glue-dir <dir> [options]

Finetunes the pretrained model on every GLUE task found (WebGPU), exports each finetuned model to
ONNX, scores the dev sets with onnxruntime-web and with WebGPU, and prints a Markdown table next to the
Cramming paper's figures. Writes <out>/glue.json and <out>/glue/<task>-seed<n>.onnx (with
--from-scratch: glue-from-scratch.json and glue-from-scratch/), and <out>/mlm.onnx.

  --checkpoint PATH     a pretraining run folder (its newest checkpoint) or a checkpoint folder
  --glue-dir DIR        GLUE data in the layout of GLUE's download script (CoLA/train.tsv, ...)
  --tokenizer DIR       folder of the vocab.txt the model was pretrained with (default: the run folder)
  --out DIR             where the results go (default: the run folder)
  --tasks A,B           only these tasks (directory names, e.g. CoLA,SST-2)
  --seeds N             finetuning runs per task, median reported (default 1)
  --seed N              the first run's seed (default ${FINETUNE_DEFAULTS.seed})
  --epochs N            (default ${FINETUNE_DEFAULTS.epochs})
  --batch N             examples per step (default ${FINETUNE_DEFAULTS.batch})
  --lr X                peak learning rate (default ${FINETUNE_DEFAULTS.lr}, BERT-base's, for models 768
                        wide or wider; 1e-4 for the smaller presets, which finetune better with it)
  --warmup X            fraction of the steps warming up, then cosine decay to 0 (default ${FINETUNE_DEFAULTS.warmup})
  --dropout X           dropout in the encoder and the head (default ${FINETUNE_DEFAULTS.dropout})
  --max-examples N      only the first N examples of each train and dev file (quick runs)
  --from-scratch        the "no pretraining" baseline: the same finetuning from a random init
  --no-onnx             score with WebGPU only: no export, no onnxruntime-web
  --resume              go on from the glue.json an interrupted run left (it is rewritten after every
                        task): keep its tasks, evaluate the others; the checkpoint and options must match
  --help                this text
`;

/** Parses the command line (without the program name). */
export function parseEvalArgs(args: readonly string[]): EvalOptions {
  let values: Record<string, string | boolean | undefined>;
  const options = {
    checkpoint: { type: "string" },
    "glue-dir": { type: "string" },
    tokenizer: { type: "string" },
    out: { type: "string" },
    tasks: { type: "string" },
    seeds: { type: "string" },
    seed: { type: "string" },
    epochs: { type: "string" },
    batch: { type: "string" },
    lr: { type: "string" },
    warmup: { type: "string" },
    dropout: { type: "string" },
    "max-examples": { type: "string" },
    "from-scratch": { type: "boolean" },
    "no-onnx": { type: "boolean" },
    resume: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  } as const;
  try {
    ({ values } = parseArgs({ args: [...args], options }));
  } catch (e) {
    throw new EvalOptionError(parseArgsMessage(e, options));
  }
  const help = values.help === true;
  const text = (name: string) => values[name] as string | undefined;
  const number = (name: string, fallback: number, valid: (v: number) => boolean, expected: string) => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    const value = raw.trim() === "" ? NaN : Number(raw);
    if (!valid(value)) throw new EvalOptionError(`--${name} ${raw}: expected ${expected}`);
    return value;
  };
  const count = (name: string, fallback: number) =>
    number(name, fallback, (v) => Number.isSafeInteger(v) && v >= 1, "a positive integer");
  const fraction = (name: string, fallback: number) =>
    number(name, fallback, (v) => v >= 0 && v < 1, "a number in [0, 1)");
  const required = (name: string) => {
    const value = text(name);
    if (value === undefined && !help) {
      throw new EvalOptionError(`--${name} is required (--help lists the options)`);
    }
    return value ?? "";
  };
  const tasks = text("tasks")?.split(",").map((t) => t.trim()).filter((t) => t !== "");
  for (const name of tasks ?? []) {
    if (!GLUE_TASKS.some((t) => t.name === name)) {
      throw new EvalOptionError(
        `--tasks: unknown task ${name}, expected some of ${GLUE_TASKS.map((t) => t.name).join(", ")}`,
      );
    }
  }
  const maxExamples = text("max-examples") === undefined ? undefined : count("max-examples", 0);
  return {
    checkpoint: required("checkpoint"),
    glueDir: required("glue-dir"),
    tokenizer: text("tokenizer"),
    out: text("out"),
    tasks,
    seeds: count("seeds", 1),
    maxExamples,
    fromScratch: values["from-scratch"] === true,
    onnx: values["no-onnx"] !== true,
    resume: values.resume === true,
    finetune: {
      ...FINETUNE_DEFAULTS,
      seed: number(
        "seed",
        FINETUNE_DEFAULTS.seed,
        (v) => Number.isSafeInteger(v) && v >= 0,
        "a non-negative integer",
      ),
      epochs: count("epochs", FINETUNE_DEFAULTS.epochs),
      batch: count("batch", FINETUNE_DEFAULTS.batch),
      lr: text("lr") === undefined
        ? undefined
        : number("lr", NaN, (v) => v > 0 && Number.isFinite(v), "a positive number"),
      warmup: fraction("warmup", FINETUNE_DEFAULTS.warmup),
      dropout: fraction("dropout", FINETUNE_DEFAULTS.dropout),
    },
    help,
  };
}
