/**
 * `deno task tokenize`: turns a raw corpus into packed token shards, training the WordPiece vocabulary
 * first unless `--vocab` gives one.
 *
 * Writes `<out>/vocab.txt`, `<out>/tokenizer.json`, `<out>/shard-00000.bin`... and, last,
 * `<out>/manifest.json`. Progress goes to stderr, the summary to stdout.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseArgsMessage } from "../src/args.ts";
import { buildDataset, type DatasetOptions, megabytes } from "../src/data/dataset.ts";
import { DataError, describe } from "../src/data/errors.ts";
import { MAX_SHARD_VOCAB } from "../src/data/shard.ts";
import { MIN_TRAINED_VOCAB } from "../src/data/trainer.ts";

const HELP = `Usage: deno task tokenize --corpus <path>... --out <dir> [options]

Reads a corpus, trains a WordPiece vocabulary on it (unless --vocab is given), and writes the
corpus as packed sequences of token ids: <out>/vocab.txt, <out>/tokenizer.json,
<out>/shard-NNNNN.bin and, last, <out>/manifest.json.

Options:
  --corpus <path>             corpus file or directory, repeatable: .txt, .jsonl or .ndjson files,
                              optionally gzip-compressed (.gz); directories are read recursively
  --out <dir>                 output directory (created if missing)
  --vocab <dir|vocab.txt>     reuse this vocabulary instead of training one
  --vocab-size <n>            size of the trained vocabulary (default 32768; 193 to 65536)
  --min-frequency <n>         never merge a pair seen fewer times when training (default 2)
  --seq-len <n>               tokens per packed sequence (default 128)
  --min-chars-per-token <x>   drop documents with at most x characters per token (default 0:
                              keep all; the recipe's filter is 4)
  --paragraphs                .txt files hold several documents separated by blank lines
  --field <name>              the JSON Lines field holding the text (default text)
  --strict                    fail on a malformed JSON line instead of skipping it
  --limit-bytes <n>           read at most n bytes of (decompressed) text, for quick runs
  --shard-sequences <n>       sequences per shard (default: as many as fill 64 MiB, 262144 at
                              length 128)
  --overwrite                 replace a dataset already in --out
  -h, --help                  show this help`;

function parseOptions(
  args: string[],
): Required<Omit<DatasetOptions, "vocab" | "limitBytes" | "shardSequences">> & DatasetOptions | null {
  let parsed;
  const options = {
    corpus: { type: "string", multiple: true },
    out: { type: "string" },
    vocab: { type: "string" },
    "vocab-size": { type: "string", default: "32768" },
    "min-frequency": { type: "string", default: "2" },
    "seq-len": { type: "string", default: "128" },
    "min-chars-per-token": { type: "string", default: "0" },
    paragraphs: { type: "boolean", default: false },
    field: { type: "string", default: "text" },
    strict: { type: "boolean", default: false },
    "limit-bytes": { type: "string" },
    "shard-sequences": { type: "string" },
    overwrite: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  } as const;
  try {
    parsed = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: false,
    });
  } catch (e) {
    throw new DataError(parseArgsMessage(e, options));
  }
  const v = parsed.values;
  if (v.help) return null;
  if (!v.corpus?.length) throw new DataError("--corpus is required (see --help)");
  if (!v.out) throw new DataError("--out is required (see --help)");
  const integer = (name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new DataError(
        `--${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      );
    }
    return n;
  };
  const minChars = Number(v["min-chars-per-token"]);
  if (!(minChars >= 0) || v["min-chars-per-token"].trim() === "") {
    throw new DataError(
      `--min-chars-per-token: expected a number >= 0, got ${JSON.stringify(v["min-chars-per-token"])}`,
    );
  }
  return {
    corpus: v.corpus,
    out: v.out.replace(/\/+$/, "") || "/",
    vocab: v.vocab,
    vocabSize: integer("vocab-size", v["vocab-size"], MIN_TRAINED_VOCAB, MAX_SHARD_VOCAB),
    minFrequency: integer("min-frequency", v["min-frequency"], 1),
    seqLen: integer("seq-len", v["seq-len"], 1, 1 << 20),
    minCharsPerToken: minChars,
    paragraphs: v.paragraphs,
    field: v.field,
    strict: v.strict,
    limitBytes: v["limit-bytes"] === undefined ? undefined : integer("limit-bytes", v["limit-bytes"], 1),
    shardSequences: v["shard-sequences"] === undefined
      ? undefined
      : integer("shard-sequences", v["shard-sequences"], 1),
    overwrite: v.overwrite,
  };
}

async function main(args: string[]) {
  const options = parseOptions(args);
  if (!options) {
    console.log(HELP);
    return;
  }
  const { tokenizer, trained, read: stats, pack: p, tokens, unknown, shards } = await buildDataset(options);
  const kept = p.documents - p.emptyDocuments - p.droppedDocuments;
  const percent = (n: number, of: number) => `${(of > 0 ? (100 * n) / of : 0).toFixed(3)}%`;
  const filter = options.minCharsPerToken > 0
    ? `, ${p.droppedDocuments} dropped (<= ${options.minCharsPerToken} chars/token, ${p.droppedTokens} tokens)`
    : "";
  console.log(
    [
      `documents  ${p.documents} read, ${kept} kept${filter}, ${p.emptyDocuments} empty`,
      `tokens     ${tokens} encoded, ${percent(unknown, tokens)} [UNK]; ` +
      `${p.sequences} sequences of ${options.seqLen} (${p.leftoverTokens} tokens left over)`,
      `text       ${megabytes(stats.textBytes)}, ${stats.invalidUtf8} invalid UTF-8 sequences replaced, ` +
      `${stats.malformedLines} malformed JSON lines skipped`,
      `vocabulary ${tokenizer.size} tokens, hash ${tokenizer.hash}${
        trained ? " (trained)" : ` (from ${options.vocab})`
      }`,
      `shards     ${shards.length} in ${options.out}: ${shards.map((s) => s.file).join(", ")}`,
    ].join("\n"),
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof DataError ? e.message : describe(e)}`);
    Deno.exit(1);
  }
}
