// The CLI's global options, in one place: buildProgram registers them with commander, and the heap
// flags' restart (heap.ts, which runs before commander is loaded) skips the values of those that
// take one to find the command word.
export const GLOBAL_OPTIONS: ReadonlyArray<{ flags: string; description: string }> = [
  { flags: '-c, --config <file>', description: 'config file (YAML or JSON); default config/commission-sync.yaml or $COMMISSION_SYNC_CONFIG' },
  { flags: '--log-level <level>', description: 'fatal|error|warn|info|debug|trace|silent' },
  { flags: '--db <url-or-dir>', description: 'postgres://… URL or a PGlite data directory (overrides config)' },
];

/** Every spelling of the global options that take a value (`-c`, `--config`, …). */
export const GLOBAL_VALUE_OPTIONS: ReadonlySet<string> = new Set(
  GLOBAL_OPTIONS.filter((o) => o.flags.includes('<')).flatMap((o) => o.flags.split(/[\s,]+/).filter((f) => f.startsWith('-'))),
);
