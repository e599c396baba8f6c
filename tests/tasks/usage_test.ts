/**
 * Every task parses its command line the same way (src/args.ts): `-h` prints its usage and exits 0, and a
 * mistyped option is one line on stderr, `error: unknown option ... (did you mean ...?)`, and exit code 1;
 * an option set a task cannot honour is refused the same way before any GPU is opened.
 * These tests start processes, which the README's test command does not allow: .ci/run runs the tests
 * named "writes: ..." with -A.
 */
import assert from "node:assert/strict";
import { writesAllowed } from "../_helpers.ts";

const root = new URL("../../", import.meta.url).pathname;
const allowed = writesAllowed("usage_test", ["run"]);

/** Each task as deno.json runs it, a typo of one of its options, and the option it should suggest. */
const TASKS: [args: string[], typo: string, near: string][] = [
  [["--no-config", "tasks/pretrain.ts"], "--budgte", "--budget"],
  [["--no-config", "tasks/tokenize.ts"], "--vocab-sise", "--vocab-size"],
  [["--no-config", "tasks/bench.ts"], "--matrix-til", "--matrix-tile"],
  [["--no-config", "tasks/parity.ts", "write"], "--peset", "--preset"],
  [["tasks/eval.ts"], "--glue-dri", "--glue-dir"],
  [["tasks/bench_data.ts"], "--corpsu", "--corpus"],
  [["tasks/check_onnx.ts"], "--pyhton", "--python"],
  [["--no-config", "tasks/glue_curve.ts"], "--outt", "--out"],
];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", ...args],
    cwd: root,
    env: { NO_COLOR: "1" },
  }).output();
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}

Deno.test({
  name: "writes: every task prints its usage for -h and suggests the near option for a typo",
  ignore: !allowed,
  fn: async () => {
    await Promise.all(TASKS.map(async ([args, typo, near]) => {
      const task = args.join(" ");
      const help = await run([...args, "-h"]);
      assert.equal(help.code, 0, `${task} -h: ${help.stderr}`);
      assert.match(help.stdout, /^Usage: /, task);
      assert.ok(help.stdout.includes(`\n  ${near} `), `${task} -h lists ${near}`);
      assert.match(help.stdout, /\n {2}-h, --help +Show this text\.\n$/, task);
      const wrong = await run([...args, typo, "1"]);
      assert.equal(wrong.code, 1, task);
      assert.equal(wrong.stderr, `error: unknown option ${typo} (did you mean ${near}?)\n`, task);
    }));
  },
});

Deno.test({
  name: "writes: bench --peer needs --step with the peer's model and accumulation",
  ignore: !allowed,
  fn: async () => {
    for (
      const args of [[], ["--step", "--preset", "compact"], ["--step", "--accumulate", "2"], ["--kernels"]]
    ) {
      const refused = await run(["--no-config", "tasks/bench.ts", ...args, "--peer", "torch_peer.py"]);
      assert.equal(refused.code, 1, args.join(" "));
      assert.equal(
        refused.stderr,
        "error: --peer: expected --step with the crammed preset at --accumulate 1, the peer's step\n",
      );
    }
  },
});
