// The only I/O in src/rules: reading program files. The engine itself takes parsed versions.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseProgramYaml, type Program } from './program.ts';

export async function loadProgramFile(path: string): Promise<Program> {
  const text = await readFile(path, 'utf8');
  try {
    return parseProgramYaml(text);
  } catch (err) {
    throw new Error(`invalid program file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Loads every *.yaml / *.yml in `dir`, sorted by file name; program names must be unique. */
export async function loadProgramsFromDir(dir: string): Promise<Program[]> {
  const names = (await readdir(dir)).filter((n) => /\.ya?ml$/i.test(n)).sort();
  const programs: Program[] = [];
  for (const n of names) programs.push(await loadProgramFile(join(dir, n)));
  const seen = new Set<string>();
  for (const p of programs) {
    if (seen.has(p.program)) throw new Error(`program ${p.program} is defined twice in ${dir}`);
    seen.add(p.program);
  }
  return programs;
}
