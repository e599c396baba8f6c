import assert from "node:assert/strict";
import { evalHelpText, parseEvalOptions } from "../../src/eval/options.ts";
import { defaultFinetuneLr, FINETUNE_DEFAULTS } from "../../src/eval/finetune.ts";
import { compact, crammed } from "../../src/model/config.ts";

const base = ["--checkpoint", "runs/x", "--glue-dir", "../shared/data/glue"];

Deno.test("the defaults are the recipe's, one seed, every task, ONNX on", () => {
  const options = parseEvalOptions(base);
  assert.deepEqual(options, {
    checkpoint: "runs/x",
    glueDir: "../shared/data/glue",
    tokenizer: undefined,
    out: undefined,
    tasks: undefined,
    seeds: 1,
    maxExamples: undefined,
    fromScratch: false,
    onnx: true,
    writeFeatures: false,
    trace: false,
    resume: false,
    finetune: { ...FINETUNE_DEFAULTS, lr: undefined },
    gpu: undefined,
    precision: undefined,
    help: false,
  });
  // Without --lr the rate follows the model's width: the recipe's for 768 and wider, 2e-4 below.
  assert.equal(defaultFinetuneLr(crammed), FINETUNE_DEFAULTS.lr);
  assert.equal(defaultFinetuneLr(compact), 2e-4);
});

Deno.test("every finetuning value is an option", () => {
  const options = parseEvalOptions([
    ...base,
    "--tokenizer=runs/x/tok",
    "--out",
    "runs/x/eval-b",
    "--tasks",
    "CoLA, SST-2",
    "--seeds",
    "5",
    "--seed",
    "3",
    "--epochs",
    "2",
    "--batch",
    "32",
    "--lr",
    "1e-4",
    "--warmup",
    "0.06",
    "--dropout",
    "0",
    "--max-examples",
    "100",
    "--from-scratch",
    "--no-onnx",
    "--write-features",
    "--resume",
    "--gpu",
    "dawn",
    "--precision",
    "f16",
    "--pooling",
    "mean",
  ]);
  assert.equal(options.gpu, "dawn");
  assert.equal(options.precision, "f16");
  assert.equal(options.tokenizer, "runs/x/tok");
  assert.equal(options.out, "runs/x/eval-b");
  assert.deepEqual(options.tasks, ["CoLA", "SST-2"]);
  assert.equal(options.seeds, 5);
  assert.equal(options.maxExamples, 100);
  assert.equal(options.fromScratch, true);
  assert.equal(options.onnx, false);
  assert.equal(options.resume, true);
  assert.equal(options.writeFeatures, true);
  assert.equal(parseEvalOptions([...base, "--write-features", "--trace"]).trace, true);
  assert.deepEqual(options.finetune, {
    ...FINETUNE_DEFAULTS,
    seed: 3,
    epochs: 2,
    batch: 32,
    lr: 1e-4,
    warmup: 0.06,
    dropout: 0,
    pooling: "mean",
  });
});

Deno.test("bad options are one-line errors naming the option", () => {
  const cases: [string[], RegExp][] = [
    [["--checkpoint", "runs/x"], /^--glue-dir is required \(--help lists the options\)$/],
    [["--glue-dir", "g"], /^--checkpoint is required/],
    [[...base, "--seeds", "0"], /^--seeds: expected a positive integer, got "0"$/],
    [[...base, "--epochs", "1.5"], /^--epochs: expected a positive integer, got "1.5"$/],
    [[...base, "--lr", "fast"], /^--lr: expected a positive number, got "fast"$/],
    [[...base, "--dropout", "1"], /^--dropout: expected a fraction from 0 to below 1, got "1"$/],
    [[...base, "--warmup", ""], /^--warmup: expected a fraction from 0 to below 1, got ""$/],
    [[...base, "--max-examples=-3"], /^--max-examples: expected a positive integer, got "-3"$/],
    [
      [...base, "--max-examples", "-3"],
      /^--max-examples: expected a value \(write --max-examples=<value> for one/,
    ],
    [[...base, "--tasks", "CoLA,MNLI-m"], /^--tasks: expected some of CoLA, SST-2, .*, got "MNLI-m"$/],
    [[...base, "--frobnicate"], /^unknown option --frobnicate \(--help lists the options\)$/],
    [[...base, "--no-onnx=1"], /^--no-onnx takes no value$/],
    [[...base, "--seeds"], /^--seeds: expected a value/],
    [
      [...base, "--trace"],
      /^--trace needs --write-features: the peer replays a trace on the task's features$/,
    ],
    [[...base, "--gpu", "metal"], /^--gpu: expected one of builtin, dawn, auto, got "metal"$/],
    [[...base, "--precision", "bf16"], /^--precision: expected f32 or f16, got "bf16"$/],
    [[...base, "--pooling", "max"], /^--pooling: expected cls or mean, got "max"$/],
    [
      [...base, "--write-features", "--trace", "--precision", "f16"],
      /^--trace needs --precision f32: the peer replays a trace in float32$/,
    ],
    [
      [...base, "--write-features", "--trace", "--from-scratch"],
      /^--trace cannot be given with --from-scratch: the peer replays from the checkpoint$/,
    ],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseEvalOptions(args), (e: Error) => {
      assert.equal(e.name, "UsageError");
      assert.match(e.message, message);
      return true;
    }, args.join(" "));
  }
});

Deno.test("--help needs no other option and the help names every option", () => {
  const help = evalHelpText();
  assert.equal(parseEvalOptions(["--help"]).help, true);
  assert.equal(parseEvalOptions(["-h"]).help, true);
  assert.throws(
    () => parseEvalOptions(["--glue-dri", "g"]),
    /^UsageError: unknown option --glue-dri \(did you mean --glue-dir\?\)$/,
  );
  for (
    const option of [
      "--checkpoint",
      "--glue-dir",
      "--tokenizer",
      "--tasks",
      "--seeds",
      "--seed",
      "--epochs",
      "--batch",
      "--lr",
      "--warmup",
      "--dropout",
      "--max-examples",
      "--from-scratch",
      "--no-onnx",
      "--gpu",
      "--precision",
      "--pooling",
      "--write-features",
      "--trace",
      "--resume",
    ]
  ) {
    assert.ok(help.includes(`  ${option} `), option);
  }
});
