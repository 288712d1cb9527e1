// pino logger: JSON in production, pretty on a TTY. Two layers keep secrets out: path redaction for
// the usual places (headers, keys, tokens) and a final scrub of every registered secret value from
// the serialized line, whatever field it hid in.
import { pino, type Logger, type DestinationStream } from 'pino';
import pinoPretty from 'pino-pretty';
import { scrubSecrets } from '../util/secrets.ts';

export type { Logger };

export const REDACT_PATHS = [
  '*.authorization',
  '*.Authorization',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["x-sharesale-authentication"]',
  '*.headers["x-shareasale-authentication"]',
  '*.headers["stripe-signature"]',
  '*.apiKey',
  '*.api_key',
  '*.secret',
  '*.secretKey',
  '*.secret_key',
  '*.token',
  '*.accessToken',
  '*.password',
  '*.webhookSecret',
  'apiKey',
  'token',
  'secret',
  'password',
  'authorization',
  'config.connections[*].credentials',
];

export interface LoggerOptions {
  level?: string;
  format?: 'auto' | 'json' | 'pretty';
  /** Where lines go (tests pass a collector); defaults to stderr so stdout stays for reports. */
  destination?: DestinationStream;
}

/** Wraps a destination so each serialized line has registered secrets removed. */
function scrubbing(dest: DestinationStream): DestinationStream {
  return {
    write(line: string) {
      return dest.write(scrubSecrets(line));
    },
  } as DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const pretty = opts.format === 'pretty' || (opts.format !== 'json' && !opts.destination && process.stderr.isTTY);
  let dest: DestinationStream;
  if (opts.destination) dest = opts.destination;
  else if (pretty) {
    // pino-pretty in-process (no worker thread) so the scrubber sees the text first.
    dest = prettyStream();
  } else dest = pino.destination({ dest: 2, sync: true });
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[REDACTED]' }, base: undefined }, scrubbing(dest));
}

function prettyStream(): DestinationStream {
  return pinoPretty({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' }) as unknown as DestinationStream;
}

/** A silent logger for library use and tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
