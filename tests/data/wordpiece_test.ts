import assert from "node:assert/strict";
import { WordPiece as HfWordPiece, WordPieceDecoder } from "@huggingface/tokenizers";
import type { WordChunk } from "../../src/data/pretokenize.ts";
import { encodeStream, type IdChunk, WordPiece } from "../../src/data/wordpiece.ts";
import { randomInts } from "./adversarial.ts";

const SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const TOY = [
  ...SPECIAL,
  "un",
  "##aff",
  "##able",
  "##a",
  "a",
  "b",
  "##b",
  "##bc",
  "##c",
  "abc",
  "##",
  "😀",
  "##😀",
];

Deno.test("encode covers each word greedily, longest match first", () => {
  const wp = new WordPiece(TOY);
  const tokens = (word: string) => wp.encode([word]).map((id) => TOY[id]);
  assert.deepEqual(tokens("unaffable"), ["un", "##aff", "##able"]);
  assert.deepEqual(tokens("abc"), ["abc"]);
  assert.deepEqual(tokens("abcbc"), ["abc", "##bc"]);
  assert.deepEqual(tokens("ab"), ["a", "##b"]);
  assert.deepEqual(tokens("ad"), ["[UNK]"], "one uncovered character makes the whole word unknown");
  assert.deepEqual(tokens("##"), ["##"], "the first piece is looked up bare, as HF does");
  assert.deepEqual(tokens("a##"), ["[UNK]"]);
  assert.deepEqual(wp.encode(["un", "ad", "b"]).map((id) => TOY[id]), ["un", "[UNK]", "b"]);
  assert.deepEqual(wp.encode([]), []);
});

Deno.test("words over 100 characters become [UNK]; characters are code points", () => {
  const wp = new WordPiece(TOY);
  assert.equal(wp.encode(["a".repeat(100)]).length, 100);
  assert.deepEqual(wp.encode(["a".repeat(101)]), [1]);
  assert.equal(wp.encode(["😀".repeat(100)]).length, 100, "200 UTF-16 units, 100 characters");
  assert.deepEqual(wp.encode(["😀".repeat(101)]), [1]);
  assert.deepEqual(new WordPiece(TOY, { maxWordChars: 3 }).encode(["abcb"]), [1]);
  assert.throws(() => new WordPiece(["a"]), /no unknown token \[UNK\]/);
});

Deno.test("encode equals Hugging Face's WordPiece model on random vocabularies and words", () => {
  const next = randomInts(7);
  const alphabet = "abcd#é😀";
  const chars = [...alphabet];
  const word = (n: number) => Array.from({ length: n }, () => chars[next(chars.length)]).join("");
  for (let round = 0; round < 20; round++) {
    const entries = new Set<string>();
    while (entries.size < 40) entries.add((next(2) ? "##" : "") + word(1 + next(4)));
    const vocab = [...SPECIAL, ...entries];
    const ours = new WordPiece(vocab, { maxWordChars: 12 });
    const hf = new HfWordPiece({
      type: "WordPiece",
      vocab: Object.fromEntries(vocab.map((t, i) => [t, i])),
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 12,
    });
    const words = Array.from({ length: 200 }, () => word(1 + next(14)));
    for (const w of words) assert.deepEqual(ours.encode([w]).map((id) => vocab[id]), hf.encode([w]), w);
  }
});

Deno.test("decode follows HF's WordPiece decoder", () => {
  const vocab = [
    ...SPECIAL,
    "the",
    "cat",
    "'",
    "s",
    "##s",
    ".",
    ",",
    "?",
    "!",
    "n",
    "t",
    "don",
    "##ing",
    "go",
  ];
  const wp = new WordPiece(vocab);
  const hf = new WordPieceDecoder({ type: "WordPiece", prefix: "##", cleanup: true });
  const next = randomInts(8);
  for (let i = 0; i < 300; i++) {
    const ids = Array.from({ length: 1 + next(12) }, () => 5 + next(vocab.length - 5));
    assert.equal(wp.decode(ids), hf.decode(ids.map((id) => vocab[id])), ids.join(","));
  }
  assert.equal(wp.decode([5, 6, 9, 10, 11, 16, 7, 15]), "the cats., don ' t");
  assert.equal(wp.decode([2, 5, 3], { skip: new Set([2, 3]) }), "the");
  assert.throws(() => wp.decode([99]), /cannot decode id 99/);
});

Deno.test("encodeStream encodes word chunks and passes counts and ends", async () => {
  const wp = new WordPiece(TOY);
  const chunks: WordChunk[] = [
    { words: ["unaffable", "zz"], chars: 12, end: false },
    { words: [], chars: 0, end: true },
  ];
  const out: IdChunk[] = [];
  await ReadableStream.from(chunks).pipeThrough(encodeStream(wp)).pipeTo(
    new WritableStream({ write: (c) => void out.push(c) }),
  );
  assert.deepEqual(out.map((c) => [Array.from(c.ids), c.chars, c.end]), [[[5, 6, 7, 1], 12, false], [
    [],
    0,
    true,
  ]]);
});
