// Formatting helpers. Money arrives as integer minor units; it is formatted with integer arithmetic
// (no floating point), e.g. 123456 → "1,234.56".
export function minor(v, currency = 'USD') {
  if (v === null || v === undefined || v === '') return '';
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  const neg = n < 0;
  const abs = Math.abs(Math.trunc(n));
  const units = String(Math.trunc(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = String(abs % 100).padStart(2, '0');
  const sym = currency === 'USD' ? '$' : '';
  return `${neg ? '−' : ''}${sym}${units}.${cents}${sym ? '' : ` ${currency}`}`;
}

export function usd(v) {
  return minor(v, 'USD');
}

export function date(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function text(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
