export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Removes and returns the front of `items`: at most `maxItems`, and no more than `maxWeight` in
 * total weight, except that the first item is always taken (one heavier item goes alone).
 */
export function takeFront<T>(items: T[], maxItems: number, maxWeight: number, weight: (item: T) => number): T[] {
  let n = 0;
  let total = 0;
  while (n < items.length && n < maxItems) {
    total += weight(items[n]!);
    if (n > 0 && total > maxWeight) break;
    n++;
  }
  return items.splice(0, n);
}
