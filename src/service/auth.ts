// Bearer-token authentication. Tokens come from the environment variables named in
// server.tokens[] (VAR or VAR_FILE), each with a role: viewer (read) or operator (read + approve,
// ignore, push, trigger). Presented tokens are compared in constant time against every configured
// token (SHA-256 digests of equal length, no early exit); token values are registered as secrets so
// the log scrubber removes them, and they are never put in a log line or a response.
// Failed attempts are rate limited per client address.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.ts';
import { resolveEnvSecret } from '../config/load.ts';
import { ApiError } from './errors.ts';

export type Role = 'viewer' | 'operator';
const RANK: Record<Role, number> = { viewer: 1, operator: 2 };

export interface Principal {
  role: Role;
  /** The environment variable that holds the token — an identity for audit (decided_by), not a secret. */
  name: string;
}

interface TokenEntry {
  digest: Buffer;
  principal: Principal;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export class TokenAuth {
  private readonly entries: TokenEntry[];

  constructor(tokens: Array<{ value: string; role: Role; name: string }>) {
    this.entries = tokens.map((t) => ({ digest: digest(t.value), principal: { role: t.role, name: t.name } }));
  }

  static fromConfig(config: Config, env: NodeJS.ProcessEnv): TokenAuth {
    const tokens = config.server.tokens.map((t, i) => ({
      value: resolveEnvSecret(t.env, env, `server.tokens.${i}.env`)!,
      role: t.role,
      name: t.env,
    }));
    return new TokenAuth(tokens);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Constant-time lookup: every entry is compared whatever matched. */
  identify(presented: string): Principal | undefined {
    const d = digest(presented);
    let found: Principal | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, d) && !found) found = e.principal;
    }
    return found;
  }
}

export function bearerFrom(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

export function hasRole(p: Principal, needed: Role): boolean {
  return RANK[p.role] >= RANK[needed];
}

/** Sliding-window counter of failed authentications per client address. */
export class FailureLimiter {
  private readonly hits = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;

  constructor(max: number, windowMs: number) {
    this.max = max;
    this.windowMs = windowMs;
  }

  /** Milliseconds until the client may try again, or 0 when not blocked. */
  blockedFor(key: string, now = Date.now()): number {
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.hits.delete(key);
    else this.hits.set(key, list);
    if (list.length < this.max) return 0;
    return list[0]! + this.windowMs - now;
  }

  fail(key: string, now = Date.now()): void {
    const list = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    list.push(now);
    this.hits.set(key, list);
    if (this.hits.size > 10_000) {
      // bounded memory under a spray of addresses: forget the oldest keys
      for (const k of [...this.hits.keys()].slice(0, 1_000)) this.hits.delete(k);
    }
  }
}

export interface Authenticator {
  authenticate(req: FastifyRequest, needed: Role): Principal;
}

export function createAuthenticator(tokens: TokenAuth, limiter: FailureLimiter): Authenticator {
  return {
    authenticate(req, needed) {
      const key = req.ip;
      const wait = limiter.blockedFor(key);
      if (wait > 0) throw new ApiError(429, 'rate_limited', `too many failed authentication attempts; retry in ${Math.ceil(wait / 1000)} s`, { retryAfterSeconds: Math.ceil(wait / 1000) });
      const presented = bearerFrom(req);
      if (!presented) {
        limiter.fail(key);
        throw new ApiError(401, 'unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
      }
      const principal = tokens.identify(presented);
      if (!principal) {
        limiter.fail(key);
        throw new ApiError(401, 'unauthorized', 'invalid token');
      }
      if (!hasRole(principal, needed)) throw new ApiError(403, 'forbidden', `this action needs the ${needed} role (token has ${principal.role})`);
      return principal;
    },
  };
}
