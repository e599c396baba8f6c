import assert from "node:assert/strict";
import {
  discoverTasks,
  GLUE_TASKS,
  GlueDataError,
  type GlueTask,
  parseTsv,
  readExamples,
} from "../../src/eval/glue.ts";

const ROOT = new URL("../../fixtures/glue", import.meta.url).pathname;
const MALFORMED = new URL("../../fixtures/glue-malformed", import.meta.url).pathname;
const task = (name: string): GlueTask => GLUE_TASKS.find((t) => t.name === name)!;

Deno.test("discoverTasks finds complete tasks and skips the others with a reason", () => {
  const { found, skipped } = discoverTasks(ROOT);
  assert.deepEqual(found.map((f) => f.task.name), ["CoLA", "SST-2", "MRPC", "STS-B", "MNLI", "RTE", "WNLI"]);
  assert.deepEqual(skipped, [
    { name: "QQP", reason: "missing QQP/train.tsv, QQP/dev.tsv" },
    { name: "QNLI", reason: "missing QNLI/train.tsv" },
  ]);
  const mnli = found.find((f) => f.task.name === "MNLI")!;
  assert.deepEqual(mnli.devPaths, [`${ROOT}/MNLI/dev_matched.tsv`, `${ROOT}/MNLI/dev_mismatched.tsv`]);
  assert.deepEqual(discoverTasks(`${ROOT}/CoLA`).skipped.map((s) => s.reason)[0], "no directory CoLA/");
});

Deno.test("discoverTasks rejects a missing root in one line", () => {
  assert.throws(() => discoverTasks(`${ROOT}/nowhere`), (e: Error) => {
    assert.ok(e instanceof GlueDataError);
    assert.equal(e.message, `GLUE directory ${ROOT}/nowhere: not found`);
    return true;
  });
  assert.throws(() => discoverTasks(`${ROOT}/RTE/dev.tsv`), /not a directory/);
});

Deno.test("CoLA: no header, sentence in column 4, label in column 2", () => {
  const dev = readExamples(`${ROOT}/CoLA/dev.tsv`, task("CoLA"));
  assert.equal(dev.length, 4);
  assert.deepEqual(dev[0], { a: "The dog chased a ball across the yard.", label: 1 });
  assert.deepEqual(dev[1], { a: "Ball the dog a chased.", label: 0 });
});

Deno.test("MRPC: a header with a byte order mark, label first, quotes kept as text", () => {
  const train = readExamples(`${ROOT}/MRPC/train.tsv`, task("MRPC"));
  assert.equal(train.length, 4);
  assert.deepEqual(train[2], {
    a: '"We are pleased," the director said.',
    b: "The director said they were pleased.",
    label: 1,
  });
});

Deno.test("STS-B: scores are numbers, the last column", () => {
  const dev = readExamples(`${ROOT}/STS-B/dev.tsv`, task("STS-B"));
  assert.deepEqual(dev.map((e) => e.label), [4.5, 0, 3.2]);
  assert.equal(dev[0].b, "A bird flies in the sky.");
});

Deno.test("MNLI: 12-column train and 16-column dev files, label from the last column", () => {
  const mnli = task("MNLI");
  const train = readExamples(`${ROOT}/MNLI/train.tsv`, mnli);
  const dev = readExamples(`${ROOT}/MNLI/dev_mismatched.tsv`, mnli);
  assert.deepEqual(train.map((e) => e.label), [1, 0, 2]);
  assert.deepEqual(dev[1], { a: "Prices went up.", b: "Prices increased.", label: 1 });
});

Deno.test("RTE: Windows line ends are accepted", () => {
  const dev = readExamples(`${ROOT}/RTE/dev.tsv`, task("RTE"));
  assert.deepEqual(dev[1], {
    a: "The museum is closed on Mondays.",
    b: "The museum is open every day.",
    label: 1,
  });
});

Deno.test("SST-2 and WNLI parse every row", () => {
  assert.deepEqual(readExamples(`${ROOT}/SST-2/train.tsv`, task("SST-2")).map((e) => e.label), [
    1,
    0,
    1,
    0,
    1,
    0,
  ]);
  assert.deepEqual(readExamples(`${ROOT}/WNLI/dev.tsv`, task("WNLI")).map((e) => e.label), [1, 0]);
});

Deno.test("malformed rows are reported with file and line", () => {
  const cases: [string, string, string][] = [
    ["wrong_columns.tsv", "RTE", ":3: expected 4 tab-separated columns, got 3"],
    ["unknown_label.tsv", "SST-2", ':3: unknown label "2", expected one of 0, 1'],
    ["non_numeric_score.tsv", "STS-B", ':2: score "about four" is not a number'],
  ];
  for (const [file, name, message] of cases) {
    const path = `${MALFORMED}/${file}`;
    assert.throws(() => readExamples(path, task(name)), (e: Error) => {
      assert.ok(e instanceof GlueDataError, file);
      assert.equal(e.message, `${path}${message}`);
      return true;
    });
  }
  assert.throws(() => readExamples(`${MALFORMED}/absent.tsv`, task("RTE")), /absent.tsv: not found/);
});

Deno.test("a file without examples is an error naming it, before any finetuning reads it", () => {
  for (
    const [file, message] of [["header_only.tsv", ": no examples after the header line"], [
      "empty.tsv",
      ": empty file, expected a header line",
    ]]
  ) {
    const path = `${MALFORMED}/${file}`;
    assert.throws(() => readExamples(path, task("SST-2")), (e: Error) => {
      assert.ok(e instanceof GlueDataError);
      assert.equal(e.message, `${path}${message}`);
      return true;
    });
  }
  assert.throws(() => parseTsv("", task("CoLA"), "cola.tsv"), /^GlueDataError: cola\.tsv: no examples$/);
});

Deno.test("blank lines at the end are not rows, and invalid UTF-8 is counted when replaced", () => {
  const warnings: string[] = [];
  const path = `${MALFORMED}/latin1_trailing_blank.tsv`;
  const examples = readExamples(path, task("SST-2"), (w) => warnings.push(w));
  assert.deepEqual(examples.map((e) => e.label), [1, 0]);
  // Two invalid bytes replaced; the file's own U+FFFD is not counted.
  assert.equal(examples[1].a, "bad \uFFFD\uFFFD bytes \uFFFD");
  assert.deepEqual(warnings, [`${path}: 2 invalid UTF-8 sequences replaced by U+FFFD`]);
});
