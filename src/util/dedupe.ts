/** Keeps the last row per key (a page may repeat a record; one upsert statement must not). */
export function dedupeBy<T>(rows: T[], key: (r: T) => string): T[] {
  const m = new Map<string, T>();
  for (const r of rows) m.set(key(r), r);
  return [...m.values()];
}
