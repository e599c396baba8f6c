import assert from "node:assert/strict";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { DataError } from "../../src/data/errors.ts";
import { normalizeStream, normalizeText } from "../../src/data/normalize.ts";
import { preTokenize, preTokenizeStream } from "../../src/data/pretokenize.ts";
import { listCorpusFiles } from "../../src/data/corpus_files.ts";
import { readCorpus } from "../../src/data/read.ts";
import {
  CLS_ID,
  fnv1a64,
  MASK_ID,
  PAD_ID,
  SEP_ID,
  SPECIAL_TOKENS,
  Tokenizer,
  UNK_ID,
} from "../../src/data/tokenizer.ts";
import { countWordsStream, trainWordPiece, WordCounter } from "../../src/data/trainer.ts";
import { encodeStream } from "../../src/data/wordpiece.ts";
import { adversarialStrings } from "./adversarial.ts";

const fixture = (path: string) => new URL(`../../fixtures/data/${path}`, import.meta.url).pathname;
const SHARED = new URL("../../../shared/data/", import.meta.url).pathname;

/** The shared data directory's `path`, or a failure that says where it was looked for. */
function shared(path: string): string {
  const full = SHARED + path;
  try {
    Deno.statSync(full);
  } catch {
    throw new Error(`shared data not found at ${full}: this test reads ../shared/data beside the repository`);
  }
  return full;
}

/** Trains a vocabulary on `paths` through the streaming stages, as `deno task tokenize` does. */
async function train(paths: string[], vocabSize: number, minFrequency = 2): Promise<Tokenizer> {
  const counter = new WordCounter();
  const { readable } = readCorpus(await listCorpusFiles(paths));
  await readable.pipeThrough(normalizeStream()).pipeThrough(preTokenizeStream()).pipeTo(
    countWordsStream(counter),
  );
  return new Tokenizer(trainWordPiece(counter.counts, { vocabSize, minFrequency }));
}

/** Trains a vocabulary on texts held in memory. */
function trainOnTexts(texts: readonly string[], vocabSize: number): Tokenizer {
  const counter = new WordCounter();
  for (const text of texts) counter.add(preTokenize(normalizeText(text)));
  return new Tokenizer(trainWordPiece(counter.counts, { vocabSize }));
}

function hfTokenizer(tokenizer: Tokenizer): HfTokenizer {
  return new HfTokenizer(JSON.parse(tokenizer.tokenizerJson()), { clean_up_tokenization_spaces: false });
}

/** Checks our ids against HF's for each text; returns how many ids were compared. */
function assertParity(ours: Tokenizer, hf: HfTokenizer, texts: Iterable<string>): number {
  let n = 0;
  for (const text of texts) {
    const expected = hf.encode(text, { add_special_tokens: false }).ids;
    assert.deepEqual(ours.encode(text), expected, JSON.stringify(text.slice(0, 300)));
    n += expected.length;
  }
  return n;
}

Deno.test("special tokens sit at their documented ids", () => {
  assert.deepEqual(SPECIAL_TOKENS, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
  assert.deepEqual([PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID], [0, 1, 2, 3, 4]);
});

Deno.test("fnv1a64 matches the reference vectors", () => {
  const hash = (s: string) => fnv1a64(new TextEncoder().encode(s));
  assert.equal(hash(""), "cbf29ce484222325");
  assert.equal(hash("a"), "af63dc4c8601ec8c");
  assert.equal(hash("foobar"), "85944171f73967e8");
});

Deno.test("training on the fixture corpus reproduces the committed vocabulary and tokenizer.json", async () => {
  const trained = await train([fixture("corpus")], 320, 1);
  const committed = await Tokenizer.load(fixture("vocab"));
  assert.equal(trained.vocabTxt, committed.vocabTxt);
  assert.equal(trained.hash, committed.hash);
  assert.equal(committed.hash, fnv1a64(Deno.readFileSync(fixture("vocab/vocab.txt"))));
  assert.equal(trained.tokenizerJson(), Deno.readTextFileSync(fixture("vocab/tokenizer.json")));
  assert.deepEqual((await Tokenizer.load(fixture("vocab/vocab.txt"))).vocab, committed.vocab);
  assert.equal(Tokenizer.parse(committed.vocabTxt.replaceAll("\n", "\r\n")).hash, committed.hash);
});

Deno.test("a vocabulary file that does not parse gets a one-line error naming file and line", async () => {
  const rejects = async (file: string, pattern: RegExp) => {
    await assert.rejects(Tokenizer.load(fixture(file)), (e) => {
      assert.ok(e instanceof DataError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  };
  await rejects(
    "bad/vocab-order.txt",
    /vocab-order\.txt line 4: expected \[SEP\] \(id 3\), found "\[MASK\]"$/,
  );
  await rejects("bad/vocab-duplicate.txt", /vocab-duplicate\.txt line 8: token "a" repeats line 6$/);
  await rejects("bad/vocab-empty-line.txt", /vocab-empty-line\.txt line 7: empty token$/);
  await rejects("bad/vocab-not-utf8.txt", /vocab-not-utf8\.txt: not UTF-8 text$/);
  await rejects("bad/empty.txt", /empty\.txt: 0 tokens; expected the 5 special tokens and more$/);
  await rejects("bad/missing-vocab", /vocabulary .*missing-vocab: not found$/);
  await rejects("corpus", /vocabulary .*corpus\/vocab\.txt: not found$/);
  assert.throws(
    () => Tokenizer.parse("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na b\n"),
    /line 6: token "a b" holds whitespace/,
  );
});

Deno.test("ids equal Hugging Face's from our tokenizer.json on thousands of adversarial strings", async () => {
  const tokenizer = await Tokenizer.load(fixture("vocab"));
  const hf = hfTokenizer(tokenizer);
  assert.ok(assertParity(tokenizer, hf, adversarialStrings(4000, 9)) > 100_000);
  assert.deepEqual(
    tokenizer.encode("[CLS] x [SEP]").slice(0, 1),
    [tokenizer.wordPiece.id("[")],
    "special text is text",
  );
});

Deno.test("encodeForModel and decode match Hugging Face's post-processor and decoder", async () => {
  const tokenizer = await Tokenizer.load(fixture("vocab"));
  const hf = hfTokenizer(tokenizer);
  for (const [a, b] of [["The keeper's logbook.", "All ships, safe!"], ["café", "naïve"], ["", "x"]]) {
    const expected = hf.encode(a, { text_pair: b, add_special_tokens: true, return_token_type_ids: true });
    assert.deepEqual(tokenizer.encodeForModel(a, b), { ids: expected.ids, typeIds: expected.token_type_ids });
    const single = hf.encode(a, { add_special_tokens: true, return_token_type_ids: true });
    assert.deepEqual(tokenizer.encodeForModel(a), { ids: single.ids, typeIds: single.token_type_ids });
    const ids = tokenizer.encodeForModel(a, b).ids;
    assert.equal(tokenizer.decode(ids), hf.decode(ids));
  }
  assert.equal(
    tokenizer.decode(tokenizer.encodeForModel("The keeper read, then slept.").ids, { skipSpecial: true }),
    "the keeper read, then slept.",
  );
});

Deno.test("the streaming stages give each document the ids of encode(document)", async () => {
  const tokenizer = await Tokenizer.load(fixture("vocab"));
  const files = await listCorpusFiles([fixture("corpus")]);
  const texts: string[] = [];
  let current = "";
  for await (const chunk of readCorpus(files).readable) {
    current += chunk.text;
    if (chunk.end) [texts[texts.length], current] = [current, ""];
  }
  const streamed: number[][] = [[]];
  await readCorpus(files).readable
    .pipeThrough(normalizeStream())
    .pipeThrough(preTokenizeStream())
    .pipeThrough(encodeStream(tokenizer.wordPiece))
    .pipeTo(
      new WritableStream({
        write(chunk) {
          streamed[streamed.length - 1].push(...chunk.ids);
          if (chunk.end) streamed.push([]);
        },
      }),
    );
  assert.deepEqual(streamed.slice(0, -1), texts.map((t) => tokenizer.encode(t)));
});

Deno.test("parity with Hugging Face on every field of every shared GLUE dev set", () => {
  const glue = shared("glue/");
  const texts: string[] = [];
  for (const task of [...Deno.readDirSync(glue)].filter((e) => e.isDirectory).map((e) => e.name).sort()) {
    const dev = `${glue}${task}/dev.tsv`;
    try {
      Deno.statSync(dev);
    } catch {
      continue;
    }
    for (const line of Deno.readTextFileSync(dev).split("\n")) texts.push(...line.split("\t"));
  }
  assert.ok(texts.length > 40_000, `${texts.length} fields`);
  const tokenizer = trainOnTexts(texts, 4000);
  assert.equal(tokenizer.size, 4000);
  const ids = assertParity(tokenizer, hfTokenizer(tokenizer), texts);
  assert.ok(ids > 500_000, `${ids} ids compared`);
});

Deno.test("parity with Hugging Face on a slice of the shared Gutenberg corpus", async () => {
  const corpus = shared("corpus/gutenberg-00.jsonl.gz");
  const { readable } = readCorpus(await listCorpusFiles([corpus]), { limitBytes: 3_000_000 });
  const paragraphs: string[] = [];
  for await (const chunk of readable) paragraphs.push(...chunk.text.split("\n\n"));
  assert.ok(paragraphs.join("").length > 2_500_000);
  const tokenizer = trainOnTexts(paragraphs, 8000);
  const ids = assertParity(tokenizer, hfTokenizer(tokenizer), paragraphs);
  assert.ok(ids > 500_000, `${ids} ids compared`);
});
