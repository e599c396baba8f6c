/**
 * `deno task bench` refuses option sets it cannot honour before it opens a GPU. These tests start the task,
 * which the README's test command does not allow: .ci/run runs the tests named "writes: ..." with -A.
 */
import assert from "node:assert/strict";
import { writesAllowed } from "../_helpers.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "writes: bench --peer needs --step with the peer's model and accumulation",
  ignore: !writesAllowed("bench_test", ["run"]),
  fn: async () => {
    for (
      const args of [[], ["--step", "--preset", "compact"], ["--step", "--accumulate", "2"], ["--kernels"]]
    ) {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--no-check",
          "--no-config",
          "tasks/bench.ts",
          ...args,
          "--peer",
          "torch_peer.py",
        ],
        cwd: root,
        env: { NO_COLOR: "1" },
      }).output();
      assert.equal(code, 1, args.join(" "));
      assert.equal(
        new TextDecoder().decode(stderr),
        "error: --peer: expected --step with the crammed preset at --accumulate 1, the peer's step\n",
      );
    }
  },
});
