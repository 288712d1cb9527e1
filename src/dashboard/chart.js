/* global Node */
// Inline SVG charts, rendered here (no library, no network). Values are integer minor units.
import { usd } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A "nice" axis maximum and step for values up to max (in cents, stepped in whole dollars). */
function niceScale(max) {
  if (max <= 0) return { top: 100, step: 25 };
  const raw = max / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((st) => st >= raw) ?? 10 * pow;
  return { top: Math.ceil(max / step) * step, step };
}

const shortUsd = (cents) => {
  const d = cents / 100;
  if (Math.abs(d) >= 1e6) return `$${(d / 1e6).toFixed(1)}M`;
  if (Math.abs(d) >= 1e3) return `$${(d / 1e3).toFixed(1)}k`;
  return `$${Math.round(d)}`;
};

/**
 * Grouped bars: categories (x) × series. series: [{ key, label, cls, values: number[] }].
 * Negative values are drawn below the zero line.
 */
export function groupedBarChart({ id, title, categories, series, width = 860, height = 320 }) {
  const pad = { l: 70, r: 16, t: 36, b: 48 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const all = series.flatMap((x) => x.values);
  const max = Math.max(0, ...all);
  const min = Math.min(0, ...all);
  const pos = niceScale(max);
  const neg = min < 0 ? niceScale(-min) : { top: 0, step: pos.step };
  const span = pos.top + neg.top;
  const y = (v) => pad.t + hgt * ((pos.top - v) / span);
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title, preserveAspectRatio: 'xMidYMid meet' });
  svg.append(s('title', {}, title));
  svg.append(s('text', { x: pad.l, y: 20, class: 'chart-title' }, title));
  // grid + y labels
  for (let v = -neg.top; v <= pos.top + 1e-9; v += pos.step) {
    svg.append(s('line', { x1: pad.l, x2: pad.l + w, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid' }));
    svg.append(s('text', { x: pad.l - 8, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, shortUsd(v)));
  }
  const groupW = categories.length ? w / categories.length : w;
  const barW = Math.max(4, Math.min(36, (groupW * 0.8) / Math.max(1, series.length)));
  categories.forEach((cat, i) => {
    const gx = pad.l + i * groupW + (groupW - barW * series.length) / 2;
    series.forEach((ser, j) => {
      const v = ser.values[i] ?? 0;
      const top = y(Math.max(0, v));
      const bottom = y(Math.min(0, v));
      const rect = s('rect', { x: gx + j * barW, y: top, width: barW - 2, height: Math.max(1, bottom - top), class: `bar ${ser.cls}`, 'data-series': ser.key, 'data-category': cat, 'data-value': v });
      rect.append(s('title', {}, `${cat} · ${ser.label}: ${usd(v)}`));
      svg.append(rect);
    });
    svg.append(s('text', { x: pad.l + i * groupW + groupW / 2, y: pad.t + hgt + 18, class: 'tick', 'text-anchor': 'middle' }, cat));
  });
  // legend
  let lx = pad.l;
  for (const ser of series) {
    svg.append(s('rect', { x: lx, y: height - 18, width: 12, height: 12, class: `bar ${ser.cls}` }));
    svg.append(s('text', { x: lx + 16, y: height - 8, class: 'legend' }, ser.label));
    lx += 24 + ser.label.length * 7.5;
  }
  if (categories.length === 0) svg.append(s('text', { x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'tick' }, 'no data'));
  return svg;
}

/** Tier over time as a step line over months; levels are the tier ids in their program order. */
export function tierChart({ id, months, tiers, levels, width = 860, height = 200 }) {
  const pad = { l: 80, r: 16, t: 16, b: 32 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const svg = s('svg', { id, class: 'chart', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'Tier over time' });
  svg.append(s('title', {}, 'Tier over time'));
  const yOf = (tier) => pad.t + hgt - (levels.length <= 1 ? hgt / 2 : (hgt * levels.indexOf(tier)) / (levels.length - 1));
  levels.forEach((lv) => {
    svg.append(s('line', { x1: pad.l, x2: pad.l + w, y1: yOf(lv), y2: yOf(lv), class: 'grid' }));
    svg.append(s('text', { x: pad.l - 8, y: yOf(lv) + 4, class: 'tick', 'text-anchor': 'end' }, lv));
  });
  const step = months.length > 1 ? w / (months.length - 1) : 0;
  let d = '';
  months.forEach((m, i) => {
    const x = pad.l + (months.length > 1 ? i * step : w / 2);
    const yy = yOf(tiers[i]);
    d += i === 0 ? `M${x},${yy}` : `H${x}V${yy}`;
    const dot = s('circle', { cx: x, cy: yy, r: 4, class: 'dot' });
    dot.append(s('title', {}, `${m}: ${tiers[i]}`));
    svg.append(dot);
    svg.append(s('text', { x, y: pad.t + hgt + 20, class: 'tick', 'text-anchor': 'middle' }, m));
  });
  if (d) svg.insertBefore(s('path', { d, class: 'step' }), svg.children[1] ?? null);
  return svg;
}
