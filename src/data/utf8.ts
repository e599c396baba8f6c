/**
 * UTF-8 decoding that counts what it replaces.
 *
 * @module
 */

/**
 * A streaming UTF-8 decoder that replaces invalid sequences with U+FFFD (as `TextDecoder` does) and
 * counts them: replacements in the output minus the encoded U+FFFD (EF BF BD) already in the input.
 */
export class Utf8Decoder {
  #decoder = new TextDecoder("utf-8");
  #replacements = 0;
  #encoded = 0;
  /** The last two input bytes, so that EF BF BD split across chunks is still seen. */
  #tail = new Uint8Array(2);
  #tailLength = 0;

  /** Invalid sequences met so far. */
  get invalid(): number {
    return this.#replacements - this.#encoded;
  }

  decode(bytes: Uint8Array): string {
    this.#countEncoded(bytes);
    return this.#count(this.#decoder.decode(bytes, { stream: true }));
  }

  /** The text held back for an incomplete final sequence (a truncated one counts as invalid). */
  finish(): string {
    return this.#count(this.#decoder.decode());
  }

  #count(text: string): string {
    for (let i = text.indexOf("\uFFFD"); i >= 0; i = text.indexOf("\uFFFD", i + 1)) this.#replacements++;
    return text;
  }

  #countEncoded(bytes: Uint8Array) {
    const n = bytes.length;
    const at = (i: number) => (i >= 0 ? bytes[i] : this.#tail[this.#tailLength + i]);
    for (let i = Math.max(-this.#tailLength, -2); i < n - 2; i++) {
      if (i >= 0) {
        i = bytes.indexOf(0xEF, i);
        if (i < 0 || i >= n - 2) break;
      }
      if (at(i) === 0xEF && at(i + 1) === 0xBF && at(i + 2) === 0xBD) this.#encoded++;
    }
    const keep = Math.min(2, n);
    if (keep === 2) this.#tail.set(bytes.subarray(n - 2));
    else if (keep === 1) this.#tail.set([this.#tail[1], bytes[n - 1]]);
    this.#tailLength = Math.min(2, this.#tailLength + n);
  }
}
