// Loads a sibling module of the project that may not exist in this build (the connectors' webhook
// handlers, the main job, alert digests land independently). The path is given relative to the
// project root without extension; `.ts` is tried when running from sources, `.js` from dist/.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const fromSources = import.meta.url.endsWith('.ts');
/** Project root: src/service/ → ../../ (also dist/src/service/ → dist/). */
const root = new URL('../../', import.meta.url);

export function optionalModulePath(relNoExt: string): string | undefined {
  const url = new URL(`${relNoExt}${fromSources ? '.ts' : '.js'}`, root);
  return existsSync(fileURLToPath(url)) ? url.href : undefined;
}

export async function loadOptionalModule(relNoExt: string): Promise<Record<string, unknown> | undefined> {
  const href = optionalModulePath(relNoExt);
  if (!href) return undefined;
  return (await import(href)) as Record<string, unknown>;
}

/** The first export among `names` that is a function. */
export function pickFunction<T extends (...args: never[]) => unknown>(mod: Record<string, unknown> | undefined, names: string[]): T | undefined {
  if (!mod) return undefined;
  for (const n of names) if (typeof mod[n] === 'function') return mod[n] as T;
  return undefined;
}
