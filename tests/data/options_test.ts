import assert from "node:assert/strict";
import { UsageError } from "../../src/args.ts";
import { parseTokenizeOptions, tokenizeHelpText } from "../../src/data/options.ts";

const base = ["--corpus", "a.txt", "--out", "data/x/"];

Deno.test("tokenize's defaults, and every option given", () => {
  assert.deepEqual(parseTokenizeOptions(base), {
    corpus: ["a.txt"],
    out: "data/x",
    vocabSize: 32768,
    minFrequency: 2,
    seqLen: 128,
    minCharsPerToken: 0,
    skipDocuments: 0,
    paragraphs: false,
    field: "text",
    strict: false,
    overwrite: false,
  });
  assert.deepEqual(
    parseTokenizeOptions([
      ...base,
      "--corpus=b/",
      "--vocab=v/vocab.txt",
      "--vocab-size=256",
      "--min-frequency=3",
      "--seq-len=64",
      "--min-chars-per-token=4",
      "--paragraphs",
      "--field=body",
      "--strict",
      "--limit-bytes=1000",
      "--skip-documents=32",
      "--shard-sequences=10",
      "--overwrite",
    ]),
    {
      corpus: ["a.txt", "b/"],
      out: "data/x",
      vocab: "v/vocab.txt",
      vocabSize: 256,
      minFrequency: 3,
      seqLen: 64,
      minCharsPerToken: 4,
      paragraphs: true,
      field: "body",
      strict: true,
      limitBytes: 1000,
      skipDocuments: 32,
      shardSequences: 10,
      overwrite: true,
    },
  );
  assert.equal(parseTokenizeOptions(["--corpus", "a", "--out", "/"])?.out, "/");
});

Deno.test("tokenize's bad command lines are one-line usage errors naming the option", () => {
  const cases: [string[], string][] = [
    [["--out", "x"], "--corpus is required (--help lists the options)"],
    [["--corpus", "a"], "--out is required (--help lists the options)"],
    [[...base, "--vocab-size", "50"], '--vocab-size: expected an integer from 193 to 65536, got "50"'],
    [[...base, "--seq-len", "0"], '--seq-len: expected an integer from 1 to 1048576, got "0"'],
    [
      [...base, "--min-chars-per-token=-1"],
      '--min-chars-per-token: expected a number of at least 0, got "-1"',
    ],
    [[...base, "--limit-bytes", "1.5"], '--limit-bytes: expected a positive integer, got "1.5"'],
    [[...base, "--skip-documents", "1.5"], '--skip-documents: expected a non-negative integer, got "1.5"'],
    [[...base, "--vocab-sise", "256"], "unknown option --vocab-sise (did you mean --vocab-size?)"],
    [[...base, "stray"], "unexpected argument stray (--help lists the options)"],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseTokenizeOptions(args), (e: Error) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.equal(e.message, message);
      return true;
    });
  }
});

Deno.test("tokenize's -h needs no other option, and the help lists every option", () => {
  assert.equal(parseTokenizeOptions(["-h"]), undefined);
  const help = tokenizeHelpText();
  for (
    const flag of [
      "--corpus",
      "--out",
      "--vocab",
      "--vocab-size",
      "--min-frequency",
      "--seq-len",
      "--paragraphs",
    ]
  ) {
    assert.ok(help.includes(`\n  ${flag} `), flag);
  }
  assert.match(help, /--vocab-size <n> +The size of the trained vocabulary\. \(default: 32768\)/);
});
