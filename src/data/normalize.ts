/**
 * The recipe's text normalization, in this order:
 *
 * 1. ``` `` ``` and `''` become `"` (on the raw text, pairs matched left to right);
 * 2. Unicode NFD, then lower-case;
 * 3. every character other than printable ASCII, tab, LF and CR is removed: combining accents (so
 *    `é` becomes `e`), every other non-ASCII character, and the ASCII control characters (as BERT's
 *    `clean_text` does);
 * 4. each run of spaces, tabs, LFs and CRs becomes one space.
 *
 * {@linkcode HF_NORMALIZER} states the same steps for Hugging Face `tokenizers` (a `Sequence` of
 * `Replace`, `NFD`, `Lowercase`, `StripAccents` and `Replace`), so that a `tokenizer.json` reproduces
 * our ids. Streaming gives the same text as normalizing a whole document at once: a trailing quote
 * character or high surrogate is held back until the next piece.
 *
 * @module
 */
import type { TextChunk } from "./text_parser.ts";

/** Characters removed in step 3 (any run of them). */
const DROP_PATTERN = "[^\\t\\n\\r\\x20-\\x7E]+";
/** Whitespace runs collapsed in step 4. */
const SPACE_PATTERN = "[\\t\\n\\r ]+";

const QUOTES = /``|''/g;
const NON_ASCII = /[\u0080-\uFFFF]/;
const DROP = new RegExp(DROP_PATTERN, "g");
const SPACES = new RegExp(SPACE_PATTERN, "g");

/** The normalizer in Hugging Face `tokenizers` JSON form: the same steps, for `tokenizer.json`. */
export const HF_NORMALIZER = {
  type: "Sequence",
  normalizers: [
    { type: "Replace", pattern: { String: "``" }, content: '"' },
    { type: "Replace", pattern: { String: "''" }, content: '"' },
    { type: "NFD" },
    { type: "Lowercase" },
    { type: "StripAccents" },
    { type: "Replace", pattern: { Regex: DROP_PATTERN }, content: "" },
    { type: "Replace", pattern: { Regex: SPACE_PATTERN }, content: " " },
  ],
} as const;

/** Normalizes a whole text. */
export function normalizeText(text: string): string {
  const normalizer = new Normalizer();
  return normalizer.push(text) + normalizer.finish();
}

/** Normalizes one document given in pieces; the concatenated output equals {@linkcode normalizeText}'s. */
export class Normalizer {
  /** A trailing `` ` ``, `'` or high surrogate held back until the next piece. */
  #held = "";
  /** The output so far ends with a space. */
  #space = false;

  /** The normalized text of `text`, the next piece of the document. */
  push(text: string): string {
    let s = this.#held + text;
    if (s.includes("``") || s.includes("''")) s = s.replace(QUOTES, '"');
    const last = s.charCodeAt(s.length - 1);
    if (last === 0x60 || last === 0x27 || (last >= 0xD800 && last <= 0xDBFF)) {
      this.#held = s.slice(-1);
      s = s.slice(0, -1);
    } else this.#held = "";
    return this.#clean(s);
  }

  /** Ends the document: the text still held back. The normalizer is then ready for a new document. */
  finish(): string {
    const s = this.#clean(this.#held);
    this.#held = "";
    this.#space = false;
    return s;
  }

  #clean(s: string): string {
    if (NON_ASCII.test(s)) s = s.normalize("NFD");
    s = s.toLowerCase().replace(DROP, "").replace(SPACES, " ");
    if (s.length === 0) return s;
    if (this.#space && s.charCodeAt(0) === 32) s = s.slice(1);
    if (s.length > 0) this.#space = s.charCodeAt(s.length - 1) === 32;
    return s;
  }
}

/** Normalizes a stream of document pieces; document ends pass through. */
export function normalizeStream(): TransformStream<TextChunk, TextChunk> {
  const normalizer = new Normalizer();
  return new TransformStream({
    transform(chunk, controller) {
      let text = normalizer.push(chunk.text);
      if (chunk.end) text += normalizer.finish();
      if (text.length > 0 || chunk.end) controller.enqueue({ text, end: chunk.end });
    },
  });
}
