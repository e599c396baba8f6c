/**
 * The options of `deno task tokenize`: its option table (see args.ts), the dataset options it gives, and
 * the help text.
 *
 * @module
 */
import { type OptionTable, parseCommandLine, usageText } from "../args.ts";
import { integerFrom, nonNegativeInteger, numberWhere, positiveInteger, text } from "../arg_values.ts";
import { DATASET_DEFAULTS, type DatasetOptions } from "./dataset.ts";
import { MAX_SHARD_VOCAB } from "./shard.ts";
import { MIN_TRAINED_VOCAB } from "./trainer.ts";

/** `--vocab-size`, which bench_data takes too. */
export const VOCAB_SIZE_OPTION = {
  value: "<n>",
  default: DATASET_DEFAULTS.vocabSize,
  help: "The size of the trained vocabulary.",
  parse: integerFrom(MIN_TRAINED_VOCAB, MAX_SHARD_VOCAB),
};

const TABLE = {
  corpus: {
    value: "<path>",
    help: "A corpus file or directory, repeatable: .txt, .jsonl or .ndjson files, optionally " +
      "gzip-compressed (.gz); directories are read recursively.",
    required: true,
    multiple: true,
    parse: text,
  },
  out: { value: "<dir>", help: "The output directory (created if missing).", required: true, parse: text },
  vocab: {
    value: "<dir|vocab.txt>",
    shown: "train one",
    help: "Reuse this vocabulary instead of training one.",
    parse: text,
  },
  vocabSize: VOCAB_SIZE_OPTION,
  minFrequency: {
    value: "<n>",
    default: DATASET_DEFAULTS.minFrequency,
    help: "Never merge a pair seen fewer times when training.",
    parse: positiveInteger,
  },
  seqLen: {
    value: "<n>",
    default: DATASET_DEFAULTS.seqLen,
    help: "Tokens per packed sequence.",
    parse: integerFrom(1, 1 << 20),
  },
  minCharsPerToken: {
    value: "<x>",
    default: DATASET_DEFAULTS.minCharsPerToken,
    shown: "0: keep all; the recipe's filter is 4",
    help: "Drop documents with at most x characters per token.",
    parse: numberWhere("a number of at least 0", (n) => n >= 0),
  },
  paragraphs: { switch: true, help: ".txt files hold several documents separated by blank lines." },
  field: {
    value: "<name>",
    default: DATASET_DEFAULTS.field,
    help: "The JSON Lines field holding the text.",
    parse: text,
  },
  strict: { switch: true, help: "Fail on a malformed JSON line instead of skipping it." },
  limitBytes: {
    value: "<n>",
    shown: "no limit",
    help: "Read at most n bytes of (decompressed) text, for quick runs.",
    parse: positiveInteger,
  },
  skipDocuments: {
    value: "<n>",
    default: DATASET_DEFAULTS.skipDocuments,
    help: "Leave out the corpus's first n documents, e.g. a held-out set's tokenized with --limit-bytes " +
      '(n: its manifest\'s "documents"; the document the limit cut is left out whole).',
    parse: nonNegativeInteger,
  },
  shardSequences: {
    value: "<n>",
    shown: "as many as fill 64 MiB, 262144 at length 128",
    help: "Sequences per shard.",
    parse: positiveInteger,
  },
  overwrite: { switch: true, help: "Replace a dataset already in --out." },
} as const satisfies OptionTable;

/** The text of `--help`. */
export function tokenizeHelpText(): string {
  return usageText(
    `Usage: deno task tokenize --corpus <path>... --out <dir> [options]

Reads a corpus, trains a WordPiece vocabulary on it (unless --vocab is given), and writes the
corpus as packed sequences of token ids: <out>/vocab.txt, <out>/tokenizer.json,
<out>/shard-NNNNN.bin and, last, <out>/manifest.json.`,
    TABLE,
  );
}

/** The dataset `deno task tokenize` builds, with every default filled in. */
export type TokenizeOptions =
  & Required<Omit<DatasetOptions, "vocab" | "limitBytes" | "shardSequences">>
  & DatasetOptions;

/** Parses tokenize's command line; undefined when it asks for --help. */
export function parseTokenizeOptions(args: readonly string[]): TokenizeOptions | undefined {
  const { values, help } = parseCommandLine(TABLE, args);
  if (help) return undefined;
  return { ...values, out: values.out.replace(/\/+$/, "") || "/" };
}
