import assert from "node:assert/strict";
import { BertPreTokenizer } from "@huggingface/tokenizers";
import { preTokenize, PreTokenizer, preTokenizeStream, type WordChunk } from "../../src/data/pretokenize.ts";
import type { TextChunk } from "../../src/data/text_parser.ts";
import { adversarialStrings, randomInts } from "./adversarial.ts";

Deno.test("preTokenize splits on whitespace and splits off each punctuation character", () => {
  const cases: [string, string[]][] = [
    ["Hello, world!", ["Hello", ",", "world", "!"]],
    ["  don't  stop...  ", ["don", "'", "t", "stop", ".", ".", "."]],
    ["$5.00 + 3% = ~x^2", ["$", "5", ".", "00", "+", "3", "%", "=", "~", "x", "^", "2"]],
    ["[CLS] ##a", ["[", "CLS", "]", "#", "#", "a"]],
    ["¿qué? «sí» — no", ["¿", "qué", "?", "«", "sí", "»", "—", "no"]],
    ["a\u3001b\u3002", ["a", "\u3001", "b", "\u3002"]],
    ["x\u00a0y\u2003z\u3000w\u0085v", ["x", "y", "z", "w", "v"]], // Unicode White_Space
    ["a\u0001b \u200bc", ["a\u0001b", "\u200bc"]], // controls and ZWSP are word characters
    ["\u{1F600}! \u{10100}x", ["\u{1F600}", "!", "\u{10100}", "x"]], // emoji is a symbol, U+10100 punctuation
    ["", []],
    [" \t\n ", []],
  ];
  for (const [text, words] of cases) assert.deepEqual(preTokenize(text), words, JSON.stringify(text));
});

Deno.test("preTokenize equals Hugging Face's BertPreTokenizer (JS \\s aside)", () => {
  const hf = new BertPreTokenizer();
  // The JS port splits on JS \s, which adds U+FEFF and lacks U+0085 (Rust's char::is_whitespace
  // and ours are the other way round); neither survives our normalizer.
  const strings = adversarialStrings(3000, 4).map((s) => s.replace(/[\u0085\uFEFF]/g, "x"));
  for (const text of strings) {
    assert.deepEqual(preTokenize(text), hf.pre_tokenize_text(text), JSON.stringify(text));
  }
});

Deno.test("PreTokenizer joins words cut by piece boundaries", () => {
  const next = randomInts(5);
  for (const text of adversarialStrings(300, 6)) {
    const pre = new PreTokenizer({ maxWordChars: Infinity });
    const words: string[] = [];
    for (let i = 0; i < text.length;) {
      const size = 1 + next(5);
      pre.push(text.slice(i, i + size), words);
      i += size;
    }
    pre.finish(words);
    assert.deepEqual(words, preTokenize(text), JSON.stringify(text));
  }
});

Deno.test("PreTokenizer holds a bounded part of an overlong word", () => {
  const pre = new PreTokenizer({ maxWordChars: 5 });
  const words: string[] = [];
  for (const piece of ["abc", "def", "ghi", "jkl", "mno", " pq"]) pre.push(piece, words);
  pre.finish(words);
  assert.deepEqual(words, ["abcdefghijkl", "pq"], "cut at 2 * 5 + 2 units, still longer than 5");
});

Deno.test("preTokenizeStream passes document ends and character counts", async () => {
  const chunks: TextChunk[] = [
    { text: "one tw", end: false },
    { text: "o", end: true },
    { text: "three", end: true },
  ];
  const out: WordChunk[] = [];
  await ReadableStream.from(chunks).pipeThrough(preTokenizeStream()).pipeTo(
    new WritableStream({ write: (c) => void out.push(c) }),
  );
  assert.deepEqual(out, [
    { words: ["one"], chars: 6, end: false },
    { words: ["two"], chars: 1, end: true },
    { words: ["three"], chars: 5, end: true },
  ]);
});
