// A fault-injecting HTTP proxy for the fault harness: sits in front of one fake API and, per request
// (seeded), answers 503, 429 with Retry-After, adds latency, truncates the body or resets the
// connection. Uniform across the five fakes (whose own setFaults differ in what they can do).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from './generate.ts';

export interface ProxyFaults {
  /** Probability that a request gets a fault (split evenly over the enabled kinds). */
  rate: number;
  kinds?: Array<'5xx' | '429' | 'latency' | 'truncate' | 'reset'>;
  retryAfterSeconds?: number;
  latencyMs?: number;
  seed?: number;
}

export interface FaultProxy {
  url: string;
  counts: Record<string, number>;
  setFaults(f: ProxyFaults | null): void;
  close(): Promise<void>;
}

/** `target` is the fake's base URL; the proxy keeps its path prefix (…/api/v2, /v1 …). */
export async function startFaultProxy(target: string, initial: ProxyFaults | null = null): Promise<FaultProxy> {
  const t = new URL(target);
  let faults = initial;
  let rand = mulberry32(initial?.seed ?? 7);
  const counts: Record<string, number> = { requests: 0 };
  const bump = (k: string): void => {
    counts[k] = (counts[k] ?? 0) + 1;
  };
  const server = http.createServer((req, res) => {
    bump('requests');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let fault: string | undefined;
      if (faults && rand() < faults.rate) {
        const kinds = faults.kinds ?? ['5xx', '429', 'latency', 'truncate', 'reset'];
        fault = kinds[Math.floor(rand() * kinds.length)];
      }
      if (fault) bump(fault);
      if (fault === '5xx') {
        res.writeHead(503, { 'content-type': 'application/json' });
        return res.end('{"error":{"type":"api_error","message":"injected 503"},"message":"injected 503","status":503}');
      }
      if (fault === '429') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(faults?.retryAfterSeconds ?? 1) });
        return res.end('{"error":{"type":"rate_limit","message":"injected 429"},"message":"injected 429","status":429}');
      }
      if (fault === 'reset') {
        req.socket.destroy();
        return;
      }
      const forward = (): void => {
        const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host } }, (ur) => {
          const body: Buffer[] = [];
          ur.on('data', (c: Buffer) => body.push(c));
          ur.on('end', () => {
            let buf = Buffer.concat(body);
            const headers = { ...ur.headers };
            delete headers['content-length'];
            delete headers['transfer-encoding'];
            if (fault === 'truncate' && (ur.statusCode ?? 500) < 300) buf = buf.subarray(0, Math.max(1, Math.floor(buf.length / 2)));
            res.writeHead(ur.statusCode ?? 502, headers);
            res.end(buf);
          });
        });
        up.on('error', () => {
          if (!res.headersSent) res.writeHead(502);
          res.end();
        });
        up.end(Buffer.concat(chunks));
      };
      if (fault === 'latency') setTimeout(forward, faults?.latencyMs ?? 150);
      else forward();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${t.pathname.replace(/\/$/, '')}`,
    counts,
    setFaults(f) {
      faults = f;
      rand = mulberry32(f?.seed ?? 7);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
