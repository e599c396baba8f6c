/**
 * The loss curve of a run as an SVG picture: MLM loss against budget time used (bottom axis), the
 * tokens seen by then (top axis), and the learning rate as a dashed line on the right axis, so the
 * one-cycle schedule can be read against the loss.
 */
import type { MetricRecord } from "./metrics.ts";

export interface PlotOptions {
  /** Heading above the plot, e.g. the run folder and preset. */
  title?: string;
  width?: number;
  height?: number;
}

/** Round tick values covering [min, max]: steps of 1, 2, 2.5 or 5 times a power of ten, at most `count` + 1 ticks. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const ticks = [];
  for (let i = Math.ceil(min / step - 1e-9); i * step <= max + step * 1e-9; i++) {
    ticks.push(+(i * step).toPrecision(12));
  }
  return ticks;
}

/** A count with a k/M/B suffix: 950, 12.5k, 3.2M, 1.05B. */
export function formatCount(n: number): string {
  for (const [size, suffix] of [[1e9, "B"], [1e6, "M"], [1e3, "k"]] as const) {
    if (Math.abs(n) >= size) return `${+(n / size).toPrecision(3)}${suffix}`;
  }
  return `${+n.toPrecision(3)}`;
}

/** `text` with the characters XML gives a meaning escaped. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** A plot's area in pixels. */
export interface PlotBox {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** An SVG document's opening lines: the root, a white background and the centered title at `titleY`. */
export function svgStart(width: number, height: number, title: string, titleY: number): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="${titleY}" text-anchor="middle" font-size="15">${escapeXml(title)}</text>`,
  ];
}

/** Grid lines at pixel positions `xs` (vertical) and `ys` (horizontal), and the frame around `box`. */
export function gridAndFrame(box: PlotBox, xs: readonly number[], ys: readonly number[]): string[] {
  const f = (v: number) => v.toFixed(1);
  return [
    `<g stroke="#e4e4e4">`,
    ...xs.map((px) => `<line x1="${f(px)}" y1="${box.top}" x2="${f(px)}" y2="${box.bottom}"/>`),
    ...ys.map((py) => `<line x1="${box.left}" y1="${f(py)}" x2="${box.right}" y2="${f(py)}"/>`),
    `</g>`,
    `<rect x="${box.left}" y="${box.top}" width="${box.right - box.left}" height="${
      box.bottom - box.top
    }" fill="none" stroke="#444"/>`,
  ];
}

/** The time unit that keeps the axis labels readable for a run of `seconds`. */
function timeUnit(seconds: number): { size: number; name: string } {
  if (seconds <= 120) return { size: 1, name: "seconds" };
  if (seconds <= 3 * 3600) return { size: 60, name: "minutes" };
  return { size: 3600, name: "hours" };
}

/** Tokens seen after `seconds`, interpolated between records (and from none at time 0). */
function tokensAt(records: readonly MetricRecord[], seconds: number): number {
  const known = [{ seconds: 0, tokens: 0 }, ...records];
  const after = known.findIndex((r) => r.seconds >= seconds);
  if (after === -1) return known.at(-1)!.tokens;
  if (after === 0) return 0;
  const a = known[after - 1];
  const b = known[after];
  return a.tokens + (b.tokens - a.tokens) * (seconds - a.seconds) / (b.seconds - a.seconds);
}

/** The loss curve of `records` (in step order) as an SVG document. */
export function lossCurveSvg(records: readonly MetricRecord[], options: PlotOptions = {}): string {
  const { title = "MLM loss", width = 800, height = 480 } = options;
  const box = { left: 64, right: width - 72, top: 84, bottom: height - 56 };
  const out = svgStart(width, height, title, 22);
  if (records.length === 0) {
    out.push(
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle">no metrics recorded</text>`,
      "</svg>",
    );
    return out.join("\n");
  }
  const unit = timeUnit(records.at(-1)!.seconds);
  const xMax = Math.max(records.at(-1)!.seconds / unit.size, 1e-9);
  const xTicks = niceTicks(0, xMax);
  const xEnd = Math.max(xMax, xTicks.at(-1)!);
  // A diverged record's loss (NaN) has no point: the curve is drawn through the finite ones.
  const finite = records.filter((r) => Number.isFinite(r.loss));
  const losses = finite.length > 0 ? finite.map((r) => r.loss) : [0];
  let [lossMin, lossMax] = [Math.min(...losses), Math.max(...losses)];
  const pad = (lossMax - lossMin) * 0.05 || Math.abs(lossMax) * 0.05 || 1;
  [lossMin, lossMax] = [lossMin - pad, lossMax + pad];
  const yTicks = niceTicks(lossMin, lossMax).filter((t) => t >= lossMin && t <= lossMax);
  const lrMax = Math.max(...records.map((r) => r.lr)) || 1;
  const x = (seconds: number) => box.left + (seconds / unit.size / xEnd) * (box.right - box.left);
  const y = (loss: number) => box.bottom - ((loss - lossMin) / (lossMax - lossMin)) * (box.bottom - box.top);
  const yLr = (lr: number) => box.bottom - (lr / lrMax) * (box.bottom - box.top);
  const f = (v: number) => v.toFixed(1);

  out.push(...gridAndFrame(box, xTicks.map((t) => x(t * unit.size)), yTicks.map(y)));

  // Bottom axis: time; top axis: tokens seen at the same ticks.
  out.push(`<g text-anchor="middle" fill="#222">`);
  for (const t of xTicks) {
    const px = f(x(t * unit.size));
    out.push(`<text x="${px}" y="${box.bottom + 18}">${+t.toPrecision(6)}</text>`);
    out.push(`<text x="${px}" y="${box.top - 8}">${formatCount(tokensAt(records, t * unit.size))}</text>`);
  }
  out.push(`<text x="${(box.left + box.right) / 2}" y="${height - 14}">budget used (${unit.name})</text>`);
  out.push(`<text x="${(box.left + box.right) / 2}" y="${box.top - 26}">tokens seen</text>`);
  out.push(`</g>`);

  // Left axis: loss; right axis: learning rate.
  out.push(`<g text-anchor="end" fill="#222">`);
  for (const t of yTicks) {
    out.push(`<text x="${box.left - 6}" y="${f(y(t) + 4)}">${+t.toPrecision(6)}</text>`);
  }
  out.push(`</g>`);
  out.push(`<g text-anchor="start" fill="#888">`);
  for (const t of niceTicks(0, lrMax, 4)) {
    out.push(`<text x="${box.right + 6}" y="${f(yLr(t) + 4)}">${t === 0 ? "0" : t.toExponential(1)}</text>`);
  }
  out.push(`</g>`);
  const middle = (box.top + box.bottom) / 2;
  out.push(`<text transform="translate(16 ${middle}) rotate(-90)" text-anchor="middle">loss</text>`);
  out.push(
    `<text transform="translate(${
      width - 10
    } ${middle}) rotate(90)" text-anchor="middle" fill="#888">learning rate</text>`,
  );

  const points = (value: (r: MetricRecord) => number, of = records) =>
    of.map((r) => `${f(x(r.seconds))},${f(value(r))}`).join(" ");
  out.push(
    `<polyline class="lr" fill="none" stroke="#999" stroke-dasharray="4 3" points="${
      points((r) => yLr(r.lr))
    }"/>`,
  );
  out.push(
    `<polyline class="loss" fill="none" stroke="#1f5fbf" stroke-width="1.5" points="${
      points((r) => y(r.loss), finite)
    }"/>`,
  );
  const last = records.at(-1)!;
  const finalLoss = Number.isFinite(last.loss) ? last.loss.toFixed(3) : "not finite";
  out.push(
    `<text x="${width / 2}" y="40" text-anchor="middle" fill="#1f5fbf">` +
      `final loss ${finalLoss} after ${formatCount(last.tokens)} tokens, step ${last.step}</text>`,
  );
  out.push("</svg>");
  return out.join("\n");
}
