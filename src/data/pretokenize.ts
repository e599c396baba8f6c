/**
 * BERT pre-tokenization, the rules of Hugging Face's `BertPreTokenizer`: split on whitespace (which
 * is dropped), and split off every punctuation character as a word of its own. Whitespace is the
 * Unicode `White_Space` property (Rust's `char::is_whitespace`); punctuation is ASCII 33-47, 58-64,
 * 91-96 and 123-126 plus Unicode categories P*. Everything else, control characters included, is part
 * of a word. After our normalizer only ASCII is left, where these rules are exact and fast.
 *
 * @module
 */
import type { TextChunk } from "./text_parser.ts";

/** The words of a piece of normalized text, with that piece's length in characters. */
export interface WordChunk {
  words: string[];
  /** Characters of normalized text these words came from (for characters-per-token filtering). */
  chars: number;
  /** The last piece of its document. */
  end: boolean;
}

const WORD = 0;
const SPACE = 1;
const PUNCT = 2;

const ASCII_CLASS = (() => {
  const table = new Uint8Array(128);
  for (let c = 9; c <= 13; c++) table[c] = SPACE;
  table[32] = SPACE;
  for (const [from, to] of [[33, 47], [58, 64], [91, 96], [123, 126]]) table.fill(PUNCT, from, to + 1);
  return table;
})();

const WHITE_SPACE = /^\p{White_Space}$/u;
const PUNCTUATION = /^\p{P}$/u;
/** Classes of BMP characters beyond ASCII, computed on first sight (0: not yet, else class + 1). */
const bmpClass = new Uint8Array(65536);

function classOf(char: string): number {
  return WHITE_SPACE.test(char) ? SPACE : PUNCTUATION.test(char) ? PUNCT : WORD;
}

/** The words of a whole text. */
export function preTokenize(text: string): string[] {
  const words: string[] = [];
  const pre = new PreTokenizer({ maxWordChars: Infinity });
  pre.push(text, words);
  pre.finish(words);
  return words;
}

export interface PreTokenizerOptions {
  /**
   * A word held across pieces is cut once it is certainly longer than this many characters (more
   * than `2 * maxWordChars + 1` UTF-16 units), which bounds memory; WordPiece maps any word that long
   * to `[UNK]` anyway (default 100, WordPiece's limit).
   */
  maxWordChars?: number;
}

/** Splits one document given in pieces; a word cut by a piece boundary is joined again. */
export class PreTokenizer {
  readonly #maxHeld: number;
  /** The start of a word that ran to the end of the previous piece. */
  #held = "";

  constructor(options: PreTokenizerOptions = {}) {
    this.#maxHeld = 2 * (options.maxWordChars ?? 100) + 2;
  }

  /** Appends the words of `text` to `words`, holding back a word that may go on in the next piece. */
  push(text: string, words: string[]): void {
    const n = text.length;
    let start = this.#held.length > 0 ? 0 : -1;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      let cls: number;
      let width = 1;
      if (c < 128) cls = ASCII_CLASS[c];
      else if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n) {
        const next = text.charCodeAt(i + 1);
        width = next >= 0xDC00 && next <= 0xDFFF ? 2 : 1;
        cls = classOf(text.slice(i, i + width));
      } else {
        cls = bmpClass[c] - 1;
        if (cls < 0) bmpClass[c] = (cls = classOf(text[i])) + 1;
      }
      if (cls === WORD) {
        if (start < 0) start = i;
        i += width - 1;
        continue;
      }
      if (start >= 0) {
        words.push(this.#take(text.slice(start, i)));
        start = -1;
      }
      if (cls === PUNCT) words.push(text.slice(i, i + width));
      i += width - 1;
    }
    if (start >= 0) {
      const held = this.#held + text.slice(start);
      this.#held = held.length > this.#maxHeld ? held.slice(0, this.#maxHeld) : held;
    }
  }

  /** Ends the document, appending the word still held back. */
  finish(words: string[]): void {
    if (this.#held.length > 0) words.push(this.#take(""));
  }

  #take(tail: string): string {
    if (this.#held.length === 0) return tail;
    const word = this.#held + tail;
    this.#held = "";
    return word;
  }
}

/** Pre-tokenizes a stream of normalized document pieces. */
export function preTokenizeStream(options: PreTokenizerOptions = {}): TransformStream<TextChunk, WordChunk> {
  const pre = new PreTokenizer(options);
  return new TransformStream({
    transform(chunk, controller) {
      const words: string[] = [];
      pre.push(chunk.text, words);
      if (chunk.end) pre.finish(words);
      if (words.length > 0 || chunk.end) {
        controller.enqueue({ words, chars: chunk.text.length, end: chunk.end });
      }
    },
  });
}
