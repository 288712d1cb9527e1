import { hash } from 'node:crypto';

/** JSON with object keys sorted, so the same content always hashes the same. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .filter((k) => obj[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stableStringify(obj[k])}`)
    .join(',')}}`;
}

/** Hex SHA-256 of the UTF-8 text (one-shot crypto.hash: no Hash object per call). */
export function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

export function hashRecord(value: unknown): string {
  return sha256(stableStringify(value));
}
