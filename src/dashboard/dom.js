/* global Node */
// Tiny DOM helpers and the table component (every table has a CSV export of exactly what it shows).
import { text } from './format.js';

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function csvOf(columns, rows) {
  const esc = (v) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [columns.map((c) => esc(c.csv ?? c.key)).join(',')];
  for (const r of rows) lines.push(columns.map((c) => esc(r[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export function download(filename, content, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * columns: [{ key, label, format?(value,row), class? }]; CSV exports raw values (minor units stay
 * integers) under the column keys.
 */
/**
 * pager (lists longer than one page): { offset, total, onPage(offset), exportAll() } — the tools then
 * show "rows a–b of N" with previous/next, and "Export all" fetches every page for the CSV.
 */
export function table({ id, columns, rows, csvName, onRowClick, pager, empty = 'Nothing to show.' }) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.class }, c.label)));
  const body = h('tbody');
  for (const r of rows) {
    const tr = h('tr', { class: onRowClick ? 'clickable' : undefined, tabindex: onRowClick ? '0' : undefined },
      columns.map((c) => {
        const v = c.format ? c.format(r[c.key], r) : text(r[c.key]);
        return h('td', { class: c.class }, v instanceof Node ? v : String(v ?? ''));
      }));
    if (onRowClick) {
      tr.addEventListener('click', () => onRowClick(r));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRowClick(r); });
    }
    body.append(tr);
  }
  const wrap = h('div', { class: 'table-wrap', id: id ? `${id}-wrap` : undefined },
    h('div', { class: 'table-tools' },
      pager ? pagerTools(id, rows.length, pager) : h('span', { class: 'muted' }, `${rows.length} row${rows.length === 1 ? '' : 's'}`),
      h('button', { type: 'button', class: 'secondary', 'data-testid': id ? `${id}-csv` : undefined, onclick: () => download(`${csvName ?? id ?? 'export'}.csv`, csvOf(columns, rows)) }, pager && pager.total > rows.length ? 'Export page (CSV)' : 'Export CSV'),
      pager && pager.total > rows.length
        ? h('button', {
          type: 'button', class: 'secondary', 'data-testid': id ? `${id}-csv-all` : undefined,
          onclick: async (e) => {
            const button = e.currentTarget; // currentTarget is gone after the first await
            button.disabled = true;
            try {
              download(`${csvName ?? id ?? 'export'}-all.csv`, csvOf(columns, await pager.exportAll()));
            } catch (err) {
              toast(err.message, 'error');
            } finally {
              button.disabled = false;
            }
          },
        }, `Export all ${pager.total.toLocaleString('en-US')} (CSV)`)
        : null),
    rows.length ? h('table', { id }, h('thead', {}, head), body) : h('p', { class: 'muted' }, empty));
  return wrap;
}

function pagerTools(id, shown, { offset, total, limit, onPage }) {
  const first = shown ? offset + 1 : 0;
  const last = offset + shown;
  return h('span', { class: 'pager' },
    h('button', { type: 'button', class: 'secondary', 'data-testid': id ? `${id}-prev` : undefined, disabled: offset <= 0 ? true : undefined, onclick: () => onPage(Math.max(0, offset - limit)) }, '‹ Previous'),
    h('span', { class: 'muted', 'data-testid': id ? `${id}-range` : undefined }, `rows ${first.toLocaleString('en-US')}–${last.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`),
    h('button', { type: 'button', class: 'secondary', 'data-testid': id ? `${id}-next` : undefined, disabled: last >= total ? true : undefined, onclick: () => onPage(offset + limit) }, 'Next ›'));
}

export function toast(message, kind = 'info') {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = `show ${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.className = ''; }, 4000);
}
