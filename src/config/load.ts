// Loads configuration: defaults ← config file (YAML or JSON) ← environment variables. Secrets are
// resolved from the environment (VAR or VAR_FILE) and registered for redaction.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { configSchema, type Config, type ConnectionConfig } from './schema.ts';
import { ConfigError } from '../util/errors.ts';
import { formatZodIssues } from '../util/zod-format.ts';
import { registerSecret } from '../util/secrets.ts';

export const DEFAULT_CONFIG_FILE = 'config/commission-sync.yaml';

export interface LoadOptions {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Extra values applied last (CLI flags). */
  overrides?: Record<string, unknown>;
}

/** Well-known variables; anything else can be set as COMMISSION_SYNC__SECTION__KEY=value. */
const ENV_PATHS: Record<string, string[]> = {
  DATABASE_URL: ['database', 'url'],
  COMMISSION_SYNC_DATA_DIR: ['database', 'dataDir'],
  LOG_LEVEL: ['log', 'level'],
  LOG_FORMAT: ['log', 'format'],
  COMMISSION_SYNC_TIMEZONE: ['timezone'],
  PORT: ['server', 'port'],
};

function setPath(target: Record<string, unknown>, keys: string[], value: unknown): void {
  let node = target;
  keys.slice(0, -1).forEach((k) => {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  });
  node[keys[keys.length - 1]!] = value;
}

/** Env values are strings; numbers and booleans are coerced so the schema sees the intended type. */
function coerce(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (/^[[{]/.test(raw.trim())) {
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  }
  return raw;
}

function readFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    const parsed: unknown = file.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    if (parsed === null || parsed === undefined) return {};
    if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('top level must be a mapping');
    return parsed as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`Config file ${file} is not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.COMMISSION_SYNC_CONFIG ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const raw: Record<string, unknown> = file ? readFile(file) : {};
  // A section left with only comments in YAML parses as null: treat it as absent.
  for (const k of Object.keys(raw)) if (raw[k] === null) delete raw[k];

  for (const [name, keys] of Object.entries(ENV_PATHS)) {
    const v = env[name];
    if (v !== undefined && v !== '') setPath(raw, keys, keys[0] === 'database' && keys[1] === 'url' ? v : coerce(v));
  }
  for (const [name, v] of Object.entries(env)) {
    if (!name.startsWith('COMMISSION_SYNC__') || v === undefined) continue;
    const keys = name.slice('COMMISSION_SYNC__'.length).split('__').map((k) => k.toLowerCase().replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()));
    setPath(raw, keys, coerce(v));
  }
  for (const [dotted, v] of Object.entries(opts.overrides ?? {})) if (v !== undefined) setPath(raw, dotted.split('.'), v);

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(`Invalid configuration${file ? ` (${path.relative(process.cwd(), file) || file})` : ''}:\n${formatZodIssues(parsed.error)}`);
  }
  const cfg = parsed.data;
  if (cfg.database.url) registerSecretsInUrl(cfg.database.url);
  return cfg;
}

/** Registers the password of a database URL (config, DATABASE_URL or the --db flag) for scrubbing. */
export function registerSecretsInUrl(url: string): void {
  try {
    const u = new URL(url);
    if (u.password) registerSecret(decodeURIComponent(u.password));
  } catch {
    /* not a URL: nothing to register */
  }
}

/**
 * Resolves one credential of a connection from the environment (VAR, or a file named by VAR_FILE).
 * Missing credentials are a ConfigError naming the field and the variable, never the value.
 */
export function resolveSecret(conn: ConnectionConfig, field: string, env: NodeJS.ProcessEnv = process.env, required = true): string | undefined {
  const varName = conn.credentials[field];
  if (!varName) {
    if (!required) return undefined;
    throw new ConfigError(`connections.${conn.name}.credentials.${field}: expected the name of an environment variable holding the ${field}`);
  }
  return resolveEnvSecret(varName, env, `connections.${conn.name}.credentials.${field}`, required);
}

export function resolveEnvSecret(varName: string, env: NodeJS.ProcessEnv, fieldPath: string, required = true): string | undefined {
  let value = env[varName];
  const fileVar = env[`${varName}_FILE`];
  if ((value === undefined || value === '') && fileVar) {
    try {
      value = readFileSync(fileVar, 'utf8').trim();
    } catch {
      throw new ConfigError(`${fieldPath}: cannot read ${varName}_FILE (${fileVar})`);
    }
  }
  if (value === undefined || value === '') {
    if (!required) return undefined;
    throw new ConfigError(`${fieldPath}: environment variable ${varName} (or ${varName}_FILE) is not set`);
  }
  registerSecret(value);
  return value;
}
