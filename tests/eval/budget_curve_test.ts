import assert from "node:assert/strict";
import {
  BudgetCurveError,
  budgetCurveSvg,
  budgetTableMarkdown,
  readBudgetPoint,
  seriesOf,
} from "../../src/eval/budget_curve.ts";

const runs = new URL("../../fixtures/eval/curve/", import.meta.url).pathname;

Deno.test("a run folder's point: budget, tokens and loss from summary.json, both GLUE averages", async () => {
  const point = await readBudgetPoint(`${runs}compact-5m`);
  assert.deepEqual(point, {
    run: `${runs}compact-5m`,
    preset: "compact",
    minutes: 5,
    tokens: 2.5e8,
    finalLoss: 2.56,
    // Written before summaries recorded the recipe.
    maskRate: null,
    dataTokens: null,
    finetuneLr: null,
    pretrained: 47.3,
    scratch: 44.9,
    seeds: 3,
    covered: ["CoLA", "SST-2", "MRPC", "STS-B", "RTE"],
  });
  const recorded = await readBudgetPoint(`${runs}compact-10m-more-data`);
  assert.deepEqual(
    [recorded.maskRate, recorded.dataTokens, recorded.finetuneLr, recorded.pretrained],
    [0.3, 66776448, 2e-4, 61.3],
  );
  // Without glue.json the rate is the no-pretraining evaluation's.
  const scratchOnly = await readBudgetPoint(`${runs}scratch-only`);
  assert.deepEqual([scratchOnly.finetuneLr, scratchOnly.pretrained, scratchOnly.scratch], [1e-4, null, 48.1]);
  const unevaluated = await readBudgetPoint(`${runs}unevaluated`);
  assert.equal(unevaluated.pretrained, null);
  assert.equal(unevaluated.scratch, null);
});

Deno.test("a folder without summary.json, or an evaluation left pending, is an error naming the file", async () => {
  await assert.rejects(() => readBudgetPoint(`${runs}missing`), (e: Error) => {
    assert.ok(e instanceof BudgetCurveError);
    assert.match(e.message, /missing\/summary\.json: cannot be read/);
    return true;
  });
  await assert.rejects(
    () => readBudgetPoint(`${runs}bad-mask-rate`),
    /bad-mask-rate\/summary\.json: field maskRate is missing or has the wrong type/,
  );
  await assert.rejects(
    () => readBudgetPoint(`${runs}bad-finetune-lr`),
    /bad-finetune-lr\/glue\.json source\.finetune: field lr is missing or has the wrong type/,
  );
  // A pretrained score and a no-pretraining one finetuned at different rates do not compare.
  await assert.rejects(
    () => readBudgetPoint(`${runs}lr-mismatch`),
    /lr-mismatch: glue\.json was finetuned at lr 0\.0002 and glue-from-scratch\.json at lr 0\.0001/,
  );
  await assert.rejects(
    () => readBudgetPoint(`${runs}pending`),
    /pending\/glue\.json: the evaluation has tasks pending/,
  );
});

Deno.test("the table lists runs by series, then budget; the plot has a line per series and a dot per score", async () => {
  const points = await Promise.all(
    ["crammed-10m", "compact-5m", "compact-2m", "unevaluated"].map((r) => readBudgetPoint(`${runs}${r}`)),
  );
  const rows = budgetTableMarkdown(points).split("\n").slice(2);
  assert.deepEqual(rows.map((r) => r.split(" | ")[1]), ["compact", "compact", "compact", "crammed"]);
  assert.match(rows[1], /\| — \| — \| 2\.0 \| 100M \| 3\.100 \| — \| 45\.5 \| 44\.0 \| 3 \|$/);
  assert.match(rows[0], /\| — \| — \| — \|$/);
  for (const x of ["minutes", "tokens"] as const) {
    const svg = budgetCurveSvg(points, { x });
    assert.equal(svg.match(/<polyline/g)?.length, 2);
    // 3 pretrained dots and 2 no-pretraining ones, plus the legend's 2 per preset.
    assert.equal(svg.match(/<circle[^>]*r="4" fill="#/g)?.length, 3 + 2);
    assert.equal(svg.match(/<circle[^>]*fill="white"/g)?.length, 2 + 2);
  }
  assert.match(budgetCurveSvg([points[3]], { x: "minutes" }), /no evaluated run/);
});

Deno.test("every dot lies inside the frame, also past the last ticks and for one point at 0 minutes", () => {
  const point = (minutes: number, pretrained: number, scratch: number) => ({
    run: `runs/compact-${minutes}m`,
    preset: "compact",
    minutes,
    tokens: minutes * 5e7,
    finalLoss: 3,
    maskRate: 0.15,
    dataTokens: 2e7,
    finetuneLr: 1e-4,
    pretrained,
    scratch,
    seeds: 3,
    covered: ["CoLA"],
  });
  const cases = [
    [point(2.02, 51.9, 47.6), point(5.02, 53.7, 47.6)], // x ticks 0, 2, 4
    [point(2, 51.9, 45.3), point(10, 54.8, 45.3)], // y ticks 46 to 54
    [point(5, 50, 50)], // scores on a multiple of 5
    [point(0, 50, 45)], // no budget at all
  ];
  for (const points of cases) {
    for (const x of ["minutes", "tokens"] as const) {
      const svg = budgetCurveSvg(points, { x });
      const frame = svg.match(/<rect x="(\d+)" y="(\d+)" width="(\d+)" height="(\d+)"/)!.slice(1).map(Number);
      const [left, top, right, bottom] = [frame[0], frame[1], frame[0] + frame[2], frame[1] + frame[3]];
      assert.doesNotMatch(svg, /NaN/);
      // The data's dots (the legend's two per preset come last).
      const dots = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)].slice(0, -2);
      assert.equal(dots.length, 2 * points.length);
      for (const [, cx, cy] of dots) {
        const where = `dot at (${cx}, ${cy}), frame ${left}–${right} x ${top}–${bottom} (${x})`;
        assert.ok(Number(cx) >= left && Number(cx) < right, where);
        assert.ok(Number(cy) > top && Number(cy) < bottom, where);
      }
    }
  }
});

Deno.test("runs of one preset that differ in masking rate, data or finetuning rate are separate series, named by what differs", async () => {
  const points = await Promise.all(
    ["compact-2m", "compact-5m", "compact-10m-more-data", "crammed-10m"].map((r) =>
      readBudgetPoint(`${runs}${r}`)
    ),
  );
  const series = seriesOf(points);
  assert.deepEqual(series.get(points[2]), [
    "compact",
    "30% masked",
    "66.8M tokens of data",
    "finetuned at lr 2e-4",
  ]);
  // The older files recorded none of the three (and kept no checkpoint): a series of their own, not a guess.
  assert.deepEqual(series.get(points[0]), [
    "compact",
    "masking not recorded",
    "data not recorded",
    "finetuning lr not recorded",
  ]);
  assert.deepEqual(series.get(points[3]), ["crammed"]);
  const rows = budgetTableMarkdown(points).split("\n").slice(2);
  // By preset, then masking rate, data and finetuning rate (unrecorded last), then budget.
  assert.deepEqual(rows.map((r) => r.split(" | ")[0].split("/").at(-1)), [
    "compact-10m-more-data",
    "compact-2m",
    "compact-5m",
    "crammed-10m",
  ]);
  assert.match(rows[0], /\| compact \| 30% \| 66\.8M \| 10\.0 \| 446M \| [\d.]+ \| 2e-4 \| 61\.3 \|/);
  const svg = budgetCurveSvg(points, { x: "minutes" });
  assert.equal(svg.match(/<polyline/g)?.length, 3);
  for (const part of ["30% masked", "66.8M tokens of data", "finetuned at lr 2e-4", "crammed, pretrained"]) {
    assert.ok(svg.includes(`>${part}<`), part);
  }
});

Deno.test("values that print alike are one series; the legend of many series fits the plot, line under line", () => {
  const point = (i: number, maskRate: number, finetuneLr = 2e-4) => ({
    run: `runs/r${i}`,
    preset: "compact",
    minutes: 5,
    tokens: 2e8,
    finalLoss: 3,
    maskRate,
    dataTokens: 1e7 * (1 + i),
    finetuneLr,
    pretrained: 50 + i,
    scratch: null,
    seeds: 3,
    covered: ["CoLA"],
  });
  // 0.1 + 0.2 is not 0.3, but both print as 30%: no masking line in the names.
  const alike = [point(0, 0.3), point(1, 0.1 + 0.2)];
  assert.deepEqual([...seriesOf(alike).values()], [["compact", "10M tokens of data"], [
    "compact",
    "20M tokens of data",
  ]]);
  // The same recipe finetuned at two rates: evaluated differently, so not one line; the table lists the lower
  // rate first, whatever the order given.
  const rates = [{ ...point(0, 0.3, 2e-4), run: "runs/r0-lr2" }, point(0, 0.3, 1e-4)];
  assert.deepEqual([...seriesOf(rates).values()], [["compact", "finetuned at lr 2e-4"], [
    "compact",
    "finetuned at lr 1e-4",
  ]]);
  const rows = budgetTableMarkdown(rates).split("\n").slice(2);
  assert.deepEqual(rows.map((r) => r.split(" | ").slice(0, 1).concat(r.split(" | ")[7])), [
    ["| runs/r0", "1e-4"],
    ["| runs/r0-lr2", "2e-4"],
  ]);
  // Ten series of three legend lines each: the plot grows, lines stay 16 px apart, colours repeat dashed.
  const many = Array.from({ length: 10 }, (_, i) => point(i, 0.1 + 0.02 * i));
  const svg = budgetCurveSvg(many, { x: "minutes" });
  const height = Number(svg.match(/<svg[^>]* height="(\d+)"/)![1]);
  const legend = [...svg.matchAll(/<text x="(\d+)" y="([\d.]+)"[^>]*>[^<]*<\/text>/g)]
    .filter((m) => Number(m[1]) > 600).map((m) => Number(m[2])).sort((a, b) => a - b);
  assert.equal(legend.length, 10 * 4);
  for (let i = 1; i < legend.length; i++) {
    assert.ok(legend[i] - legend[i - 1] >= 16, `legend lines at ${legend}`);
  }
  assert.ok(legend.at(-1)! < height, `last legend line at ${legend.at(-1)}, plot height ${height}`);
  assert.equal(svg.match(/stroke-dasharray/g)?.length, 2);
});

Deno.test("a summary written before the recipe was recorded takes it from the run's newest checkpoint", async () => {
  const point = await readBudgetPoint(`${runs}compact-recipe-in-checkpoint`);
  // fixtures/train/run's state: 100 sequences of 8 tokens, masking 0.15.
  assert.deepEqual([point.maskRate, point.dataTokens], [0.15, 800]);
});
