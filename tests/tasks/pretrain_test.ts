/**
 * `deno task pretrain` as a user runs it: a real process on the CPU adapter, stopped by signals, resumed,
 * refused. These tests start processes and write run folders, which the README's test command does not
 * allow: .ci/run runs the tests named "writes: ..." with -A.
 */
import assert from "node:assert/strict";
import { inTempDir, writesAllowed } from "../_helpers.ts";

const root = new URL("../../", import.meta.url).pathname;
const corpus = `${root}fixtures/data/corpus/prose.txt`;
const allowed = writesAllowed("pretrain_test", ["run", "write"]);

/** A tiny pretraining run into `out` (extra arguments after), as a child process with its output piped. */
function pretrain(out: string, ...args: string[]): Deno.ChildProcess {
  const base = args.includes("--resume")
    ? []
    : ["--corpus", corpus, "--preset", "tiny", "--vocab-size", "256", "--out", out, "--gpu", "builtin"];
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", `${root}tasks/pretrain.ts`, ...base, "--log-every", "1", ...args],
    stdout: "piped",
    stderr: "piped",
    env: { XDG_RUNTIME_DIR: "/nonexistent", NO_COLOR: "1" },
  }).spawn();
}

/** Waits until the run has written a metrics record beyond the first `records`: it is training. */
async function untilTraining(out: string, records = 0): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const text = await Deno.readTextFile(`${out}/metrics.jsonl`).catch(() => "");
    if (text.split("\n").length - 1 > records) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the run did not start training within a minute");
}

async function finish(child: Deno.ChildProcess): Promise<{ code: number; stdout: string; stderr: string }> {
  const { code, stdout, stderr } = await child.output();
  return { code, stdout: new TextDecoder().decode(stdout), stderr: new TextDecoder().decode(stderr) };
}

const checkpoints = (out: string) => [...Deno.readDirSync(`${out}/checkpoints`)].map((e) => e.name).sort();
const summary = (out: string) => JSON.parse(Deno.readTextFileSync(`${out}/summary.json`));

Deno.test({
  name: "writes: SIGTERM and SIGHUP stop a run with a checkpoint that --resume continues from",
  ignore: !allowed || Deno.build.os === "windows",
  fn: () =>
    inTempDir(async (dir) => {
      const out = `${dir}/run`;
      const first = pretrain(out, "--budget", "10m");
      await untilTraining(out);
      first.kill("SIGTERM");
      const ended = await finish(first);
      assert.equal(ended.code, 0, ended.stderr);
      assert.match(ended.stderr, /interrupted: saving a checkpoint/);
      assert.equal(summary(out).stopped, "interrupted");
      const [saved] = checkpoints(out);
      assert.ok(saved, "a checkpoint");

      const second = pretrain(out, "--resume", out);
      await new Promise((r) => setTimeout(r, 200));
      // A second process in the same folder while the first trains is refused.
      const intruder = await finish(pretrain(out, "--resume", out));
      assert.equal(intruder.code, 1);
      assert.match(intruder.stderr, /another process \(pid \d+\) is training in this folder/);
      await untilTraining(out, Number(saved.replace("step-", "")));
      second.kill("SIGHUP");
      const resumed = await finish(second);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.ok(summary(out).steps > Number(saved.replace("step-", "")), "the resumed run trained further");
    }),
});

Deno.test({
  name: "writes: a finished run is left as it is, and a larger --budget extends it",
  ignore: !allowed,
  fn: () =>
    inTempDir(async (dir) => {
      const out = `${dir}/run`;
      assert.equal((await finish(pretrain(out, "--budget", "3steps"))).code, 0);
      const before = Deno.readTextFileSync(`${out}/summary.json`);
      const again = await finish(pretrain(out, "--resume", out));
      assert.equal(again.code, 0);
      assert.match(again.stdout, /the run has used its budget of 3steps .* nothing to do/);
      assert.equal(Deno.readTextFileSync(`${out}/summary.json`), before);
      const longer = await finish(pretrain(out, "--resume", out, "--budget", "5steps"));
      assert.equal(longer.code, 0, longer.stderr);
      assert.equal(summary(out).steps, 5);
    }),
});

Deno.test({
  name:
    "writes: a wrong --corpus leaves no folder, a used --out is refused, and --overwrite replaces the run",
  ignore: !allowed,
  fn: () =>
    inTempDir(async (dir) => {
      const missing = await finish(pretrain(`${dir}/a`, "--corpus", `${dir}/absent.txt`));
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: corpus path .*absent\.txt: not found/m);
      assert.equal([...Deno.readDirSync(dir)].length, 0, "no run folder left behind");

      const out = `${dir}/run`;
      assert.equal((await finish(pretrain(out, "--budget", "2steps"))).code, 0);
      const used = await finish(pretrain(out, "--budget", "2steps"));
      assert.equal(used.code, 1);
      assert.match(used.stderr, /--out .*run: the folder is not empty .*--overwrite/);
      const replaced = await finish(pretrain(out, "--budget", "3steps", "--overwrite"));
      assert.equal(replaced.code, 0, replaced.stderr);
      assert.deepEqual(checkpoints(out), ["step-000000003"]);
      assert.equal(summary(out).steps, 3);
    }),
});
