import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { parseArgsMessage } from "../src/args.ts";

const options = { seed: { type: "string" }, help: { type: "boolean" } } as const;

/** The message for `args`, or undefined when they parse. */
function messageOf(args: string[]): string | undefined {
  try {
    parseArgs({ args, options });
    return undefined;
  } catch (e) {
    return parseArgsMessage(e);
  }
}

Deno.test("parseArgsMessage names the option in one line", () => {
  assert.equal(messageOf(["--seed", "1"]), undefined);
  assert.equal(messageOf(["--sed", "1"]), "unknown option --sed (--help lists the options)");
  assert.equal(messageOf(["--help=yes"]), "--help takes no value");
  assert.equal(
    messageOf(["--seed", "-3"]),
    "--seed: expected a value (write --seed=<value> for one that starts with -)",
  );
  assert.equal(parseArgsMessage(new Error("first line\nsecond line")), "first line");
});
