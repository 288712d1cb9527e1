// Shipped files (program definitions, scenarios, dashboard assets) are found relative to the
// working directory first — so a deployment can override them — then to the package itself, so the
// CLI works from any directory and from the compiled dist/.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'config'))) return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) return (root = process.cwd());
    dir = up;
  }
}

export function resolveShippedPath(p: string): string {
  if (path.isAbsolute(p)) return p;
  const fromCwd = path.resolve(p);
  if (existsSync(fromCwd)) return fromCwd;
  const fromPackage = path.join(packageRoot(), p);
  return existsSync(fromPackage) ? fromPackage : fromCwd;
}
