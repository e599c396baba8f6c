import assert from "node:assert/strict";
import {
  adapterDefaults,
  checkDatasetOptions,
  devicePrecision,
  helpText,
  optionsFromJson,
  parseOptions,
  resumeOptions,
  toArgs,
} from "../../src/train/options.ts";
import { UsageError } from "../../src/args.ts";

const now = new Date(2025, 0, 2, 3, 4, 5);

Deno.test("no arguments: every option has its default", () => {
  const { options, given } = parseOptions([], now);
  assert.deepEqual(options, {
    corpus: [],
    budget: { seconds: 300 },
    out: "runs/20250102-030405",
    peakLr: 1e-3,
    lrStart: 0.25,
    lrPeakAt: 0.75,
    ramp: 0.6,
    gpu: "auto",
    dropout: 0,
    seed: 0,
    logEvery: 10,
    checkpointEvery: 10,
    keepCheckpoints: 2,
    maxNonfinite: 10,
  });
  assert.equal(given.size, 0);
  assert.deepEqual(adapterDefaults({ isCpu: true }), { preset: "small", batch: 32, maskRate: 0.15 });
  // compact, the model for minutes on a GPU, masks 30% (measured better on GLUE than BERT's 15%).
  assert.deepEqual(adapterDefaults({ isCpu: false }), { preset: "compact", batch: 512, maskRate: 0.3 });
  // Precision follows the device: f16 where the products run on its matrix units.
  assert.equal(devicePrecision({ subgroupMatrix: { m: 16, n: 16, k: 16 } }), "f16");
  assert.equal(devicePrecision({ subgroupMatrix: null }), "f32");
  // The batch and mask rate follow a preset given on the command line: the recipe's 4096 and 15% for crammed.
  assert.deepEqual(adapterDefaults({ isCpu: false }, "crammed"), {
    preset: "crammed",
    batch: 4096,
    maskRate: 0.15,
  });
  assert.deepEqual(adapterDefaults({ isCpu: true }, "compact"), {
    preset: "compact",
    batch: 512,
    maskRate: 0.3,
  });
});

Deno.test("the real run's command line", () => {
  const { options, given } = parseOptions([
    "--corpus",
    "a.jsonl.gz",
    "--corpus=b.jsonl.gz",
    "--preset",
    "crammed",
    "--budget",
    "24h",
    "--out",
    "runs/x",
    "--batch",
    "4096",
    "--micro-batch",
    "128",
    "--mask-rate",
    "0.25",
    "--dropout",
    "0.1",
    "--peak-lr",
    "7e-4",
    "--seq-len",
    "64",
    "--vocab-size",
    "8192",
    "--seed",
    "7",
    "--layers",
    "8",
    "--hidden",
    "640",
    "--heads",
    "10",
    "--intermediate",
    "2560",
    "c.jsonl.gz",
    "d.jsonl.gz",
  ]);
  assert.deepEqual(options.corpus, ["a.jsonl.gz", "b.jsonl.gz", "c.jsonl.gz", "d.jsonl.gz"]);
  assert.equal(options.preset, "crammed");
  assert.deepEqual(options.budget, { seconds: 86400 });
  assert.equal(options.out, "runs/x");
  assert.equal(options.batch, 4096);
  assert.equal(options.microBatch, 128);
  assert.equal(options.maskRate, 0.25);
  assert.equal(options.dropout, 0.1);
  assert.equal(options.peakLr, 7e-4);
  assert.equal(options.seqLen, 64);
  assert.equal(options.vocabSize, 8192);
  assert.equal(options.seed, 7);
  assert.deepEqual(
    [options.layers, options.hidden, options.heads, options.intermediate],
    [8, 640, 10, 2560],
  );
  assert.deepEqual(
    [...given].sort(),
    [
      "batch",
      "budget",
      "corpus",
      "dropout",
      "heads",
      "hidden",
      "intermediate",
      "layers",
      "maskRate",
      "microBatch",
      "out",
      "peakLr",
      "preset",
      "seed",
      "seqLen",
      "vocabSize",
    ],
  );
  assert.deepEqual(parseOptions(["--budget", "300steps"]).options.budget, { steps: 300 });
  assert.equal(parseOptions(["--help"]).help, true);
  assert.equal(parseOptions([]).help, false);
});

Deno.test("impossible values are one-line errors naming the option and what was expected", () => {
  const cases: [string[], string][] = [
    [
      ["--budget", "0s"],
      '--budget: expected a positive duration such as 90s, 10m, 1h30m or 24h, or a step count such as 500steps, got "0s"',
    ],
    [["--budget", "90"], "--budget: expected a positive duration"],
    [["--budget", "0steps"], "--budget: expected a positive duration"],
    [["--batch", "0"], '--batch: expected a positive integer, got "0"'],
    [["--batch", "12.5"], '--batch: expected a positive integer, got "12.5"'],
    [["--micro-batch", "abc"], '--micro-batch: expected a positive integer, got "abc"'],
    [["--batch", "100", "--micro-batch", "32"], "--batch 100 must be a multiple of --micro-batch 32"],
    [["--mask-rate", "1"], '--mask-rate: expected a fraction above 0 and below 1, got "1"'],
    [["--mask-rate", ""], '--mask-rate: expected a fraction above 0 and below 1, got ""'],
    [["--dropout", "1"], '--dropout: expected a fraction from 0 to below 1, got "1"'],
    [["--peak-lr=-1"], '--peak-lr: expected a positive number, got "-1"'],
    [["--lr-peak-at", "1"], '--lr-peak-at: expected a fraction from 0 to below 1, got "1"'],
    [["--ramp", "1.5"], '--ramp: expected a fraction from 0 to 1, got "1.5"'],
    [["--precision", "bf16"], '--precision: expected f32 or f16, got "bf16"'],
    [["--layers", "0"], '--layers: expected an integer from 1 to 512, got "0"'],
    [["--hidden", "500"], '--hidden: expected a multiple of 8 from 8 to 16384, got "500"'],
    [["--intermediate", "4"], '--intermediate: expected a multiple of 8 from 8 to 65536, got "4"'],
    [["--heads", "1.5"], '--heads: expected an integer from 1 to 256, got "1.5"'],
    [
      ["--resume", "runs/x", "--layers", "8"],
      "--layers cannot be given with --resume: a resumed run keeps its saved options",
    ],
    [["--preset", "huge"], '--preset: expected one of crammed, compact, small, tiny, got "huge"'],
    [["--seq-len", "4"], '--seq-len: expected an integer of at least 8, got "4"'],
    [["--vocab-size", "70000"], '--vocab-size: expected an integer from 193 to 65536, got "70000"'],
    [["--vocab-size", "50"], '--vocab-size: expected an integer from 193 to 65536, got "50"'],
    [["--seed", "-3"], "--seed: expected a value (write --seed=<value> for one that starts with -)"],
    [["--checkpoint-every", "0"], '--checkpoint-every: expected a positive number of minutes, got "0"'],
    [["--keep-checkpoints", "-1"], "--keep-checkpoints: expected a value"],
    [["--max-nonfinite", "0"], '--max-nonfinite: expected a positive integer, got "0"'],
    [["--log-every", "NaN"], '--log-every: expected a positive integer, got "NaN"'],
    [["--out", ""], '--out: expected a folder path, got ""'],
    [["--frobnicate"], "unknown option --frobnicate (--help lists the options)"],
    [["--budget"], "--budget: expected a value"],
    [["--help=yes"], "--help takes no value"],
    [
      ["--resume", "runs/x", "--peak-lr", "2e-3"],
      "--peak-lr cannot be given with --resume: a resumed run keeps its saved options",
    ],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseOptions(args), (e: Error) => {
      assert.ok(e instanceof UsageError, `${args}: ${e}`);
      assert.ok(e.message.startsWith(message), `${args.join(" ")}: got "${e.message}"`);
      assert.ok(!e.message.includes("\n"), `${args.join(" ")}: several lines`);
      return true;
    });
  }
});

Deno.test("-h is --help, and a mistyped option suggests the near one", () => {
  assert.equal(parseOptions(["-h"]).help, true);
  assert.throws(
    () => parseOptions(["--budgte", "10m"]),
    /^UsageError: unknown option --budgte \(did you mean --budget\?\)$/,
  );
});

Deno.test("--help lists every option with its default", () => {
  const help = helpText();
  const flags = [
    "--corpus",
    "--preset",
    "--layers",
    "--hidden",
    "--heads",
    "--intermediate",
    "--budget",
    "--out",
    "--resume",
    "--peak-lr",
    "--lr-start",
    "--lr-peak-at",
    "--batch",
    "--micro-batch",
    "--ramp",
    "--precision",
    "--gpu",
    "--mask-rate",
    "--dropout",
    "--seq-len",
    "--vocab-size",
    "--seed",
    "--log-every",
    "--checkpoint-every",
    "--keep-checkpoints",
    "--max-nonfinite",
  ];
  const lines = help.split("\n");
  assert.ok(lines.every((l) => l.length <= 100), "lines fit 100 columns");
  // An option's entry: its line and the indented lines that continue it.
  const entries = help.split(/\n(?= {2}--)/).map((e) => e.replace(/\s+/g, " ").trim());
  for (const flag of flags) {
    const entry = entries.find((e) => e.startsWith(`${flag} `));
    assert.ok(entry, `${flag} missing from --help`);
    assert.match(entry, /\(default: [^)]+\)$/, `${flag} has no default in --help`);
    // Every flag in --help is one the parser knows.
    parseOptions(flag === "--resume" ? [flag, "runs/x"] : []);
  }
  // Every option with a value, in order; then the two flags.
  const listed = lines.map((l) => /^ {2}(--[a-z-]+)/.exec(l)?.[1]).filter((f) => f);
  assert.deepEqual(listed, [...flags, "--overwrite"]);
  assert.ok(lines.some((l) => l.startsWith("  -h, --help")));
  assert.equal(parseOptions(["--overwrite"]).overwrite, true);
  assert.throws(
    () => parseOptions(["--resume", "runs/x", "--overwrite"]),
    /--overwrite cannot be given with --resume/,
  );
  assert.ok(help.includes("crammed, compact, small, tiny"));
  // By-preset defaults are listed from the tables adapterDefaults reads.
  const entry = (flag: string) => entries.find((e) => e.startsWith(`${flag} `))!;
  assert.match(entry("--batch"), /\(default: the preset's: crammed 4096, compact 512, small 32, tiny 32\)$/);
  assert.match(entry("--mask-rate"), /\(default: the preset's: compact 0\.3, others 0\.15\)$/);
});

Deno.test("options survive a round trip through arguments and JSON", () => {
  const { options } = parseOptions(
    [
      "--corpus=-odd-name.txt",
      "--budget",
      "1h30m",
      "--preset",
      "tiny",
      "--batch",
      "64",
      "--micro-batch",
      "8",
    ],
    now,
  );
  assert.deepEqual(parseOptions(toArgs(options), now).options, options);
  const json = JSON.parse(JSON.stringify(options));
  assert.deepEqual(optionsFromJson(json, "runs/x/state.json"), options);
  // A checkpoint from before --dropout existed trained without it.
  const { dropout: _, ...older } = json;
  assert.equal(optionsFromJson(older, "runs/x/state.json").dropout, 0);
  assert.throws(
    () => optionsFromJson({ ...json, peakLr: "fast" }, "runs/x/state.json"),
    /^UsageError: runs\/x\/state.json: --peak-lr: expected a positive number, got "fast"$/,
  );
  assert.throws(
    () => optionsFromJson({ ...json, corpus: "a.txt" }, "runs/x/state.json"),
    /^UsageError: runs\/x\/state.json: corpus: unexpected value "a.txt"$/,
  );
  assert.throws(() => optionsFromJson([], "s.json"), /s.json: expected an object of options/);
});

Deno.test("a resumed run keeps its saved options except the resumable ones given", () => {
  const saved =
    parseOptions(["--preset", "tiny", "--budget", "10m", "--out", "runs/old", "--corpus", "a"]).options;
  const given = parseOptions(["--resume", "runs/moved", "--corpus", "b", "--log-every", "5"]);
  const options = resumeOptions(saved, given, "runs/moved");
  assert.deepEqual(options, {
    ...saved,
    corpus: ["b"],
    logEvery: 5,
    out: "runs/moved",
    resume: "runs/moved",
  });
  // A finished run is extended by a larger budget, and may move to another backend.
  const longer = resumeOptions(
    saved,
    parseOptions(["--resume", "runs/moved", "--budget", "20m", "--gpu", "dawn"]),
    "x",
  );
  assert.deepEqual([longer.budget, longer.gpu, longer.preset], [{ seconds: 1200 }, "dawn", "tiny"]);
  // What the run computes does not change.
  assert.throws(() => parseOptions(["--resume", "runs/x", "--peak-lr", "2e-3"]), /--peak-lr cannot be given/);
  // A branch: continue from the checkpoint in another folder.
  const branch = parseOptions(["--resume", "runs/moved/checkpoints/step-000000010", "--out", "runs/branch"]);
  assert.equal(resumeOptions(saved, branch, "runs/moved").out, "runs/branch");
});

Deno.test("checkDatasetOptions refuses a --seq-len or --vocab-size the tokenized dataset does not have", () => {
  const dataset = { seqLen: 128, vocabSize: 32768 };
  checkDatasetOptions({}, dataset, "runs/d");
  checkDatasetOptions({ seqLen: 128, vocabSize: 32768 }, dataset, "runs/d");
  assert.throws(
    () => checkDatasetOptions({ seqLen: 64 }, dataset, "runs/d"),
    /^UsageError: --seq-len 64: the dataset in runs\/d was tokenized with --seq-len 128$/,
  );
  assert.throws(
    () => checkDatasetOptions({ vocabSize: 8192 }, dataset, "runs/d"),
    /--vocab-size 8192: the dataset in runs\/d was tokenized with --vocab-size 32768/,
  );
});
