import assert from "node:assert/strict";
import { decodeState, stateDigest } from "../../src/train/checkpoint_state.ts";
import { encodeCheckpointFiles } from "../../src/train/checkpoints.ts";
import { fixtureState, fixtureWeights } from "./run_fixture.ts";

Deno.test("decodeState names the file in every error", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  assert.throws(() => decodeState(bytes("[]"), "s.json"), /^RunFileError: s.json: expected a JSON object$/);
  assert.throws(
    () => decodeState(bytes("{}"), "s.json"),
    /^RunFileError: s.json: format must be "cram-checkpoint\/1", got undefined$/,
  );
  assert.throws(
    () => decodeState(Uint8Array.from([0xff, 0xfe]), "s.json"),
    /^RunFileError: s.json: not valid JSON/,
  );
});

Deno.test("decodeState refuses a loss scale that is not a positive scale and a count", async () => {
  const files = await encodeCheckpointFiles(fixtureState(4), fixtureWeights(4));
  const json = JSON.parse(new TextDecoder().decode(files.get("state.json")));
  for (const lossScale of [{ scale: 0, goodSteps: 1 }, { scale: 2 }, { scale: 2, goodSteps: -1 }, "big"]) {
    const bytes = new TextEncoder().encode(JSON.stringify({ ...json, lossScale }));
    assert.throws(
      () => decodeState(bytes, "s.json"),
      /^RunFileError: s.json: lossScale must be \{"scale": x > 0, "goodSteps": n\}, got /,
    );
  }
});

Deno.test("stateDigest follows the state's content, not its key order", async () => {
  const state = fixtureState(4);
  const reordered = Object.fromEntries(Object.entries(state).reverse()) as typeof state;
  assert.equal(await stateDigest(reordered), await stateDigest(state));
  assert.notEqual(await stateDigest({ ...state, step: 5 }), await stateDigest(state));
  assert.match(await stateDigest(state), /^[0-9a-f]{64}$/);
});
