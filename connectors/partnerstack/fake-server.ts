// An in-memory PartnerStack vendor API v2 on 127.0.0.1 (port 0), faithful to the reference
// (../../../shared/reference/partnerstack-api.md), not to our client:
//   - HTTP Basic auth with the vendor key pair (a Bearer key gets 401);
//   - envelopes {data:{has_more,items}}, {data:{…}}, errors {message,status};
//   - newest-first (created_at desc) lists, `starting_after` / `ending_before` on `key`, limit 1–250 (default 10);
//   - filters: min/max_created (customers, transactions, rewards), min/max_updated (customers,
//     partnerships, groups), customers: group, partner_key; partnerships: include_archived;
//     rewards: status, customer_key, group_key, invoice_key, keywords. Unknown params are ignored
//     (so min_updated on transactions/rewards does nothing, as no source documents it).
//   - POST/DELETE /transactions, POST /rewards, GET/PATCH/DELETE /customers/{key}, POST /customers,
//     GET /partnerships/{id}.
// Where the reference is unsure, the fake makes a stated choice (marked ASSUMPTION below).
// Fault injection per test: scripted steps, random 5xx / 429 (Retry-After) / truncated bodies, latency.
import http from 'node:http';
import { listenOnLoopback, lowerBound, VersionedMap, ViewCache } from '../fake-http.ts';
import { mulberry32 } from '../../src/util/random.ts';

export type Resource = 'groups' | 'partnerships' | 'customers' | 'transactions' | 'rewards';
const RESOURCES: readonly Resource[] = ['groups', 'partnerships', 'customers', 'transactions', 'rewards'];
export type ApiObject = Record<string, unknown> & { key: string };

export type FaultStep = 'ok' | { status: number; retryAfter?: number | string; message?: string } | { truncate: true } | { latencyMs: number };

export interface FakeFaults {
  /** Consumed one per API request, before the random rates. */
  script?: FaultStep[];
  /** Probability of a 5xx (errorStatus, default 503). */
  errorRate?: number;
  errorStatus?: number;
  /** Probability of a 429 with Retry-After: retryAfterSeconds (default 1). */
  rateLimitRate?: number;
  retryAfterSeconds?: number | string;
  /** Probability that a 200 body is cut in half. */
  truncateRate?: number;
  /** Added to every request. */
  latencyMs?: number;
  /** Seed of the fault PRNG (deterministic runs). */
  seed?: number;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
  auth: 'basic' | 'bearer' | 'none' | 'other';
  body?: unknown;
  fault?: string;
}

/** Maps of API objects by key. Replace objects (put/set) rather than editing them in place, or call `touch`. */
export interface FakeStore {
  groups: Map<string, ApiObject>;
  partnerships: Map<string, ApiObject>;
  customers: Map<string, ApiObject>;
  transactions: Map<string, ApiObject>;
  rewards: Map<string, ApiObject>;
  /** Adds or replaces objects (API-shaped, as the vendor would return them). */
  put(resource: Resource, objects: ApiObject | ApiObject[]): void;
  remove(resource: Resource, key: string): boolean;
  /** Tells the list indexes that objects of a resource were edited in place. */
  touch(resource: Resource): void;
  clear(): void;
}

export interface PartnerStackFakeOptions {
  faults?: FakeFaults;
  publicKey?: string;
  secretKey?: string;
  /** Clock for objects the fake creates (epoch ms). */
  now?: () => number;
  /** ASSUMPTION switch: Dub fetches status=scheduled separately, hinting the default list omits them (uncertain). */
  rewardsDefaultOmitsScheduled?: boolean;
}

export interface PartnerStackFake {
  /** Base URL including /api/v2, for `connections[].baseUrl`. */
  url: string;
  store: FakeStore;
  publicKey: string;
  secretKey: string;
  setFaults(f: FakeFaults): void;
  requests: FakeRequest[];
  /**
   * Builds now the sorted index of every resource in every order it can be listed in, which a list
   * call would otherwise build on first use after a change (a benchmark loads data, then warms, so
   * the timed run does not pay for sorting the collections, as a real API would not).
   */
  warmIndexes(): void;
  close(): Promise<void>;
}

const MAX_LIMIT = 250;
const DEFAULT_LIMIT = 10;


class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function createStore(): FakeStore {
  const maps: Record<Resource, VersionedMap<string, ApiObject>> = {
    groups: new VersionedMap(),
    partnerships: new VersionedMap(),
    customers: new VersionedMap(),
    transactions: new VersionedMap(),
    rewards: new VersionedMap(),
  };
  return {
    ...maps,
    put(resource, objects) {
      for (const o of Array.isArray(objects) ? objects : [objects]) maps[resource].set(o.key, o);
    },
    remove(resource, key) {
      return maps[resource].delete(key);
    },
    touch(resource) {
      maps[resource].touch();
    },
    clear() {
      for (const m of Object.values(maps)) m.clear();
    },
  };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const s = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const obj = (v: unknown): Record<string, unknown> | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** Newest first; ties broken by key descending so the order is total and stable. */
function cmpNewestFirst(a: ApiObject, b: ApiObject): number {
  const d = (num(b.created_at) ?? 0) - (num(a.created_at) ?? 0);
  if (d !== 0) return d;
  return a.key < b.key ? 1 : a.key > b.key ? -1 : 0;
}

/** The orders a resource can be listed in (`order_by`). */
const ordersOf = (resource: Resource): string[] => (resource === 'partnerships' ? ['created_at', '-created_at', 'updated_at', '-updated_at'] : ['created_at', '-created_at']);

/** Comparator of one `order_by`; ties broken by key so the order is total. */
function orderCmp(orderBy: string): (a: ApiObject, b: ApiObject) => number {
  const field = orderBy.replace(/^-/, '');
  const desc = orderBy.startsWith('-');
  return (a, b) => {
    if (field === 'created_at') return desc ? cmpNewestFirst(a, b) : -cmpNewestFirst(a, b);
    const d = (num(a[field]) ?? 0) - (num(b[field]) ?? 0);
    return (desc ? -d : d) || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0);
  };
}

function intParam(q: Record<string, string>, name: string): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw new ApiError(400, `'${name}' must be an integer (epoch milliseconds)`);
  return Number(v);
}

function inRange(value: unknown, min: number | undefined, max: number | undefined): boolean {
  const v = num(value);
  if (min === undefined && max === undefined) return true;
  if (v === undefined) return false;
  // ASSUMPTION: bounds are inclusive (undocumented).
  return (min === undefined || v >= min) && (max === undefined || v <= max);
}

export async function createPartnerStackFake(opts: PartnerStackFakeOptions = {}): Promise<PartnerStackFake> {
  const publicKey = opts.publicKey ?? 'pk_test_fake_public';
  const secretKey = opts.secretKey ?? 'sk_test_fake_secret';
  const expected = `Basic ${Buffer.from(`${publicKey}:${secretKey}`).toString('base64')}`;
  const now = opts.now ?? (() => Date.now());
  const store = createStore();
  const requests: FakeRequest[] = [];
  let faults: FakeFaults = opts.faults ?? {};
  let script: FaultStep[] = [...(faults.script ?? [])];
  let rand = mulberry32(faults.seed ?? 42);
  let seq = 0;
  const newKey = (prefix: string): string => `${prefix}_${(++seq).toString(36).padStart(6, '0')}${Math.floor(Math.random() * 1e6).toString(36)}`;

  const partnershipByPartnerKey = (pk: string): ApiObject | undefined => {
    for (const p of store.partnerships.values()) if (p.partner_key === pk) return p;
    return undefined;
  };
  const groupKeyOf = (g: unknown): string | undefined => s(obj(g)?.key) ?? s(g);
  const findCustomer = (ref: string): ApiObject | undefined => {
    const direct = store.customers.get(ref);
    if (direct) return direct;
    // ASSUMPTION: /customers/{customer_key} accepts our customer_key as well as PartnerStack's key.
    for (const c of store.customers.values()) if (c.customer_key === ref) return c;
    return undefined;
  };

  function list(resource: Resource, q: Record<string, string>): { has_more: boolean; items: ApiObject[] } {
    let limit = DEFAULT_LIMIT;
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > MAX_LIMIT) throw new ApiError(400, `'limit' must be an integer between 1 and ${MAX_LIMIT}`);
      limit = Number(q.limit);
    }
    if (q.starting_after && q.ending_before) throw new ApiError(400, "'starting_after' and 'ending_before' are mutually exclusive");
    const minC = intParam(q, 'min_created');
    const maxC = intParam(q, 'max_created');
    const minU = intParam(q, 'min_updated');
    const maxU = intParam(q, 'max_updated');
    const created = ['customers', 'transactions', 'rewards'].includes(resource);
    const updated = ['customers', 'partnerships', 'groups'].includes(resource);
    const orderBy = q.order_by ?? '-created_at';
    const allowed = ordersOf(resource);
    if (!allowed.includes(orderBy)) throw new ApiError(400, `'order_by' must be one of ${allowed.join(', ')}`);
    const desc = orderBy.startsWith('-');
    const cmp = orderCmp(orderBy);
    let partnershipOf: Map<string, ApiObject> | undefined;
    const byPartnerKey = (pk: string): ApiObject | undefined => {
      if (!partnershipOf) {
        partnershipOf = new Map();
        for (const p of store.partnerships.values()) if (typeof p.partner_key === 'string' && !partnershipOf.has(p.partner_key)) partnershipOf.set(p.partner_key, p);
      }
      return partnershipOf.get(pk);
    };
    const matches = (o: ApiObject): boolean => {
      if (!((!created || inRange(o.created_at, minC, maxC)) && (!updated || inRange(o.updated_at, minU, maxU)))) return false;
      if (resource === 'partnerships' && q.include_archived !== 'true' && o.archived === true) return false;
      if (resource === 'customers') {
        if (q.partner_key && o.partner_key !== q.partner_key) return false;
        if (q.group && groupKeyOf(byPartnerKey(s(o.partner_key) ?? '')?.group) !== q.group) return false;
      }
      if (resource === 'rewards') {
        if (q.status) {
          if (o.reward_status !== q.status) return false;
        } else if (opts.rewardsDefaultOmitsScheduled && o.reward_status === 'scheduled') return false;
        if (q.customer_key && obj(o.customer)?.key !== q.customer_key && obj(o.customer)?.external_key !== q.customer_key) return false;
        if (q.group_key && groupKeyOf(obj(o.partnership)?.group) !== q.group_key) return false;
        if (q.invoice_key && obj(o.invoice)?.key !== q.invoice_key) return false;
        if (q.keywords && !(s(o.description) ?? '').toLowerCase().includes(q.keywords.toLowerCase())) return false;
      }
      return true;
    };
    // The resource sorted once per change and order; the created range by binary search over it;
    // other filters applied once per distinct query (cached until the resource changes); cursors by
    // binary search. Same items, order and has_more as filtering and sorting the whole map.
    const idx = sortedIndex(resource, orderBy);
    let lo = 0;
    let hi = idx.sorted.length;
    const createdRange = created && (minC !== undefined || maxC !== undefined);
    if (createdRange && idx.keys) {
      const keys = idx.keys;
      if (desc) {
        if (maxC !== undefined) lo = lowerBound(keys, (v) => v <= maxC);
        if (minC !== undefined) hi = lowerBound(keys, (v) => v < minC, lo);
      } else {
        if (minC !== undefined) lo = lowerBound(keys, (v) => v >= minC);
        if (maxC !== undefined) hi = lowerBound(keys, (v) => v > maxC, lo);
      }
    }
    const residual =
      (createdRange && !idx.keys) ||
      (updated && (minU !== undefined || maxU !== undefined)) ||
      resource === 'partnerships' ||
      (resource === 'customers' && !!(q.partner_key || q.group)) ||
      (resource === 'rewards' && !!(q.status || opts.rewardsDefaultOmitsScheduled || q.customer_key || q.group_key || q.invoice_key || q.keywords));
    let items = idx.sorted;
    if (residual) {
      const { starting_after: _a, ending_before: _b, limit: _l, ...rest } = q;
      const range = [lo, hi];
      items = idx.views.get(idx.version, JSON.stringify(rest), () => idx.sorted.slice(range[0], range[1]).filter(matches));
      lo = 0;
      hi = items.length;
    }
    const anchorOf = (name: string, key: string): ApiObject => {
      const a = store[resource].get(key);
      if (!a) throw new ApiError(400, `'${name}': no ${resource.replace(/s$/, '')} with key '${key}'`);
      return a;
    };
    if (q.starting_after) {
      const anchor = anchorOf('starting_after', q.starting_after);
      const i = lowerBound(items, (o) => cmp(o, anchor) > 0, lo, hi);
      return { has_more: i + limit < hi, items: items.slice(i, Math.min(hi, i + limit)) };
    }
    if (q.ending_before) {
      const anchor = anchorOf('ending_before', q.ending_before);
      const end = lowerBound(items, (o) => cmp(o, anchor) >= 0, lo, hi);
      const start = Math.max(lo, end - limit);
      return { has_more: start > lo, items: items.slice(start, end) };
    }
    return { has_more: hi - lo > limit, items: items.slice(lo, Math.min(hi, lo + limit)) };
  }

  const indexes = new Map<string, { version: number; sorted: ApiObject[]; keys: number[] | null; views: ViewCache<ApiObject[]> }>();
  /** A resource sorted by one order (and its created_at keys when every object has a numeric one), per store change. */
  function sortedIndex(resource: Resource, orderBy: string): { version: number; sorted: ApiObject[]; keys: number[] | null; views: ViewCache<ApiObject[]> } {
    // A map swapped for a plain Map has no version: rebuild on every request (NaN never matches).
    const m = store[resource];
    const version = m instanceof VersionedMap ? m.version : NaN;
    const id = `${resource}|${orderBy}`;
    const hit = indexes.get(id);
    if (hit && hit.version === version) return hit;
    const sorted = [...store[resource].values()].sort(orderCmp(orderBy));
    const keys = orderBy.replace(/^-/, '') === 'created_at' && sorted.every((o) => num(o.created_at) !== undefined) ? sorted.map((o) => o.created_at as number) : null;
    const idx = { version, sorted, keys, views: new ViewCache<ApiObject[]>() };
    indexes.set(id, idx);
    return idx;
  }

  function createTransaction(body: Record<string, unknown>): ApiObject {
    const refs = ['customer_key', 'customer_external_key', 'customer_email'].filter((k) => body[k] !== undefined && body[k] !== null);
    if (refs.length !== 1) throw new ApiError(400, "exactly one of 'customer_key', 'customer_external_key' or 'customer_email' is required");
    const amount = body.amount;
    if (typeof amount !== 'number' || !Number.isInteger(amount) || Math.abs(amount) > 50_000_000_000) throw new ApiError(400, "'amount' must be an integer number of cents between -50000000000 and 50000000000");
    const cur = s(body.currency);
    if (!cur || !/^[A-Za-z]{3}$/.test(cur)) throw new ApiError(400, "'currency' is a required property (ISO-4217)");
    const key = body.key === undefined ? newKey('txn') : s(body.key);
    if (!key || key.length < 4 || key.length > 255) throw new ApiError(400, "'key' must be a string of 4 to 255 characters");
    // ASSUMPTION: a duplicate key is rejected (the reference does not know; this is the safe reading).
    if (store.transactions.has(key)) throw new ApiError(400, `A transaction with key '${key}' already exists`);
    const md = body.metadata;
    if (md !== undefined) {
      const m = obj(md);
      if (!m) throw new ApiError(400, "'metadata' must be an object");
      const entries = Object.entries(m);
      if (entries.length > 25) throw new ApiError(400, "'metadata' allows at most 25 attributes");
      for (const [k, v] of entries) if (k.length > 30 || String(v).length > 100) throw new ApiError(400, `'metadata.${k}': names up to 30 characters, values up to 100`);
    }
    let cust: ApiObject | undefined;
    // customer_key is PartnerStack's internal key; customer_external_key is the vendor's own key.
    if (body.customer_key !== undefined) cust = store.customers.get(String(body.customer_key));
    else if (body.customer_external_key !== undefined) cust = [...store.customers.values()].find((c) => c.customer_key === body.customer_external_key);
    else cust = [...store.customers.values()].find((c) => c.email === body.customer_email);
    if (!cust) throw new ApiError(404, 'Customer not found');
    const created = num(body.created_at) ?? now();
    const t: ApiObject = {
      key,
      amount,
      amount_usd: cur.toUpperCase() === 'USD' ? amount : null,
      currency: cur.toUpperCase(),
      approved: true,
      archived: false,
      category_key: s(body.category_key) ?? null,
      product_key: s(body.product_key) ?? null,
      customer: { key: cust.key, email: cust.email ?? null, external_key: cust.customer_key ?? null },
      metadata: md ?? {},
      test: body.test === true || cust.test === true,
      created_at: created,
      updated_at: now(),
    };
    store.transactions.set(key, t);
    return t;
  }

  function createReward(body: Record<string, unknown>): ApiObject {
    const amount = body.amount;
    if (typeof amount !== 'number' || !Number.isInteger(amount)) throw new ApiError(400, "'amount' is a required property (integer cents)");
    const description = s(body.description);
    if (!description) throw new ApiError(400, "'description' is a required property");
    const target = obj(body.target);
    if (!target) throw new ApiError(400, "'target' is a required property");
    const type = s(target.type);
    const tkey = s(target.key);
    if (type !== 'customer' && type !== 'transaction') throw new ApiError(400, "'target.type' must be one of customer, transaction");
    if (!tkey) throw new ApiError(400, "'target.key' is a required property");
    let cust: ApiObject | undefined;
    let txn: ApiObject | undefined;
    if (type === 'transaction') {
      txn = store.transactions.get(tkey);
      if (!txn) throw new ApiError(404, 'Transaction not found');
      cust = store.customers.get(s(obj(txn.customer)?.key) ?? '');
    } else cust = findCustomer(tkey);
    if (!cust) throw new ApiError(404, 'Customer not found');
    const ps = partnershipByPartnerKey(s(cust.partner_key) ?? '');
    const cur = (s(body.currency) ?? s(txn?.currency) ?? 'USD').toUpperCase();
    const r: ApiObject = {
      key: newKey('rew'),
      amount,
      currency: cur,
      description,
      reward_status: 'pending',
      customer: { key: cust.key, email: cust.email ?? null, external_key: cust.customer_key ?? null },
      partnership: ps ? { key: ps.key, email: ps.email ?? null, group: ps.group ?? null } : null,
      transaction: txn ? { key: txn.key, amount: txn.amount, currency: txn.currency } : null,
      invoice: null,
      offer: null,
      trigger: null,
      action: null,
      created_at: now(),
      updated_at: now(),
    };
    store.rewards.set(r.key, r);
    return r;
  }

  function createCustomer(body: Record<string, unknown>): ApiObject {
    const email = s(body.email);
    const pk = s(body.partner_key);
    if (!email) throw new ApiError(400, "'email' is a required property");
    if (!pk) throw new ApiError(400, "'partner_key' is a required property");
    const ps = partnershipByPartnerKey(pk);
    if (!ps) throw new ApiError(404, 'Partner not found');
    const t = now();
    const c: ApiObject = {
      key: newKey('cust'),
      customer_key: s(body.customer_key) ?? null,
      email,
      name: s(body.name) ?? null,
      partner_key: pk,
      partnership_key: ps.key,
      provider_key: s(body.provider_key) ?? null,
      source_type: 'api',
      test: false,
      fields: [],
      meta: {},
      mdata: obj(body.meta) ?? {},
      created_at: t,
      updated_at: t,
    };
    store.customers.set(c.key, c);
    return c;
  }

  function patchCustomer(c: ApiObject, body: Record<string, unknown>): ApiObject {
    for (const f of ['name', 'email', 'provider_key', 'customer_key'] as const) if (typeof body[f] === 'string') c[f] = body[f];
    if (body.meta !== undefined) {
      const m = obj(body.meta);
      if (!m) throw new ApiError(400, "'meta' must be an object");
      // ASSUMPTION (pitfall 3): meta is accepted on write but reads back as {}; the values show up in mdata.
      c.mdata = { ...(obj(c.mdata) ?? {}), ...m };
      c.meta = {};
    }
    c.updated_at = now();
    store.touch('customers');
    return c;
  }

  function route(method: string, parts: string[], q: Record<string, string>, body: Record<string, unknown>): { status: number; data: unknown; message: string } {
    const [res, id, extra] = parts;
    if (extra !== undefined) throw new ApiError(404, 'Not found');
    const listable: Resource[] = ['groups', 'partnerships', 'customers', 'transactions', 'rewards'];
    if (id === undefined && method === 'GET' && listable.includes(res as Resource)) return { status: 200, data: list(res as Resource, q), message: 'Retrieved' };
    if (res === 'transactions') {
      if (id === undefined && method === 'POST') return { status: 200, data: createTransaction(body), message: 'Transaction created' };
      if (id !== undefined && method === 'DELETE') {
        const t = store.transactions.get(id);
        if (!t) throw new ApiError(404, 'Transaction not found');
        store.transactions.delete(id);
        return { status: 200, data: t, message: 'Transaction deleted' };
      }
    }
    if (res === 'rewards' && id === undefined && method === 'POST') return { status: 200, data: createReward(body), message: 'Reward created' };
    if (res === 'customers') {
      if (id === undefined && method === 'POST') return { status: 200, data: createCustomer(body), message: 'Customer created' };
      if (id !== undefined) {
        const c = findCustomer(id);
        if (!c) throw new ApiError(404, 'Customer not found');
        if (method === 'GET') return { status: 200, data: c, message: 'Retrieved' };
        if (method === 'PATCH') return { status: 200, data: patchCustomer(c, body), message: 'Customer updated' };
        if (method === 'DELETE') {
          store.customers.delete(c.key);
          return { status: 200, data: c, message: 'Customer deleted' };
        }
      }
    }
    if (res === 'partnerships' && id !== undefined && method === 'GET') {
      const p = store.partnerships.get(id) ?? [...store.partnerships.values()].find((x) => x.partner_key === id || x.email === id);
      if (!p) throw new ApiError(404, 'Partnership not found');
      return { status: 200, data: p, message: 'Retrieved' };
    }
    if (listable.includes(res as Resource)) throw new ApiError(405, 'Method not allowed');
    throw new ApiError(404, 'Not found');
  }

  function nextFault(): FaultStep | undefined {
    const step = script.shift();
    if (step !== undefined) return step;
    if (faults.rateLimitRate && rand() < faults.rateLimitRate) return { status: 429, retryAfter: faults.retryAfterSeconds ?? 1 };
    if (faults.errorRate && rand() < faults.errorRate) return { status: faults.errorStatus ?? 503 };
    if (faults.truncateRate && rand() < faults.truncateRate) return { truncate: true };
    return undefined;
  }

  const server = http.createServer((req, resp) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://127.0.0.1');
        const query: Record<string, string> = {};
        for (const [k, v] of url.searchParams) query[k] = v;
        const method = (req.method ?? 'GET').toUpperCase();
        const authz = req.headers.authorization ?? '';
        const auth: FakeRequest['auth'] = !authz ? 'none' : /^basic /i.test(authz) ? 'basic' : /^bearer /i.test(authz) ? 'bearer' : 'other';
        const rec: FakeRequest = { method, path: url.pathname, query, status: 0, auth };
        requests.push(rec);
        const send = (status: number, payload: unknown, headers: Record<string, string> = {}, truncate = false): void => {
          rec.status = status;
          let text = JSON.stringify(payload);
          if (truncate) text = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
          resp.writeHead(status, { 'content-type': 'application/json', ...headers });
          resp.end(text);
        };
        if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
        if (!url.pathname.startsWith('/api/v2/')) return send(404, { message: 'Not found', status: 404 });
        let truncate = false;
        const f = nextFault();
        if (f !== undefined && f !== 'ok') {
          if ('latencyMs' in f) await new Promise((r) => setTimeout(r, f.latencyMs));
          else if ('truncate' in f) truncate = true;
          else {
            rec.fault = String(f.status);
            const headers: Record<string, string> = f.status === 429 ? { 'retry-after': String(f.retryAfter ?? 1) } : f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {};
            return send(f.status, { message: f.message ?? (f.status === 429 ? 'Too many requests' : 'Internal server error'), status: f.status }, headers);
          }
          if (truncate) rec.fault = 'truncate';
        }
        if (authz !== expected) return send(401, { message: 'Unauthorized', status: 401 });
        let body: Record<string, unknown> = {};
        if (chunks.length > 0) {
          const raw = Buffer.concat(chunks).toString('utf8');
          if (raw.trim()) {
            try {
              const parsed: unknown = JSON.parse(raw);
              const o = obj(parsed);
              if (!o) return send(400, { message: 'Request body must be a JSON object', status: 400 });
              body = o;
            } catch {
              return send(400, { message: 'Invalid JSON body', status: 400 });
            }
          }
        }
        rec.body = Object.keys(body).length > 0 ? body : undefined;
        try {
          const parts = url.pathname.slice('/api/v2/'.length).split('/').filter((p) => p).map(decodeURIComponent);
          const out = route(method, parts, query, body);
          send(out.status, { data: out.data, message: out.message, status: out.status }, {}, truncate);
        } catch (err) {
          if (err instanceof ApiError) send(err.status, { message: err.message, status: err.status });
          else send(500, { message: 'Internal server error', status: 500 });
        }
      })();
    });
  });
  const listening = await listenOnLoopback(server, 0);

  return {
    url: `${listening.origin}/api/v2`,
    store,
    publicKey,
    secretKey,
    requests,
    warmIndexes() {
      for (const r of RESOURCES) for (const o of ordersOf(r)) sortedIndex(r, o);
    },
    setFaults(f) {
      faults = f;
      script = [...(f.script ?? [])];
      rand = mulberry32(f.seed ?? 42);
    },
    close: listening.close,
  };
}

// ---- a generated data set (tests, demo, benchmark) ----------------------------------------------

export interface DatasetOptions {
  partners?: number;
  customersPerPartner?: number;
  transactionsPerCustomer?: number;
  /** Newest created_at in the data set (epoch ms); the rest spreads over the previous `spanDays`. */
  endMs?: number;
  spanDays?: number;
  /** Every n-th partner is recruited by partner 0 through `fields.recruited_by` (0 = none). */
  recruitEvery?: number;
  currency?: string;
  seed?: number;
}

export interface Dataset {
  groups: ApiObject[];
  partnerships: ApiObject[];
  customers: ApiObject[];
  transactions: ApiObject[];
  rewards: ApiObject[];
}

/** Deterministic API-shaped objects: partnerships → customers → monthly transactions → a 20% reward each (status by age). */
export function generateDataset(o: DatasetOptions = {}): Dataset {
  const rnd = mulberry32(o.seed ?? 7);
  const partners = o.partners ?? 20;
  const cpp = o.customersPerPartner ?? 5;
  const tpc = o.transactionsPerCustomer ?? 3;
  const end = o.endMs ?? Date.UTC(2025, 5, 1);
  const span = (o.spanDays ?? 50) * 86_400_000;
  const cur = o.currency ?? 'USD';
  const at = (): number => end - Math.floor(rnd() * span);
  const groups: ApiObject[] = [
    { key: 'grp_default', name: 'Default', slug: 'default', default: true, archived: false, created_at: end - span - 1000, updated_at: end - span - 1000 },
    { key: 'grp_jv', name: 'JV partners', slug: 'jv', default: false, archived: false, created_at: end - span - 500, updated_at: end - span - 500 },
  ];
  const partnerships: ApiObject[] = [];
  const customers: ApiObject[] = [];
  const transactions: ApiObject[] = [];
  const rewards: ApiObject[] = [];
  for (let p = 0; p < partners; p++) {
    const created = end - span - 100_000 + p;
    const recruited = o.recruitEvery && p > 0 && p % o.recruitEvery === 0;
    const group = groups[p % 2]!;
    partnerships.push({
      key: `pship_${p}`,
      partner_key: `partner_${p}`,
      email: `partner${p}@example.com`,
      first_name: `Partner`,
      last_name: `${p}`,
      group: { key: group.key, name: group.name, slug: group.slug, default: group.default, archived: false },
      tier: null,
      tags: [],
      m_data: {},
      fields: recruited ? { recruited_by: 'partner_0' } : {},
      stats: { CUSTOMER_COUNT: cpp },
      joined_at: created,
      created_at: created,
      updated_at: created + 1000,
    });
    for (let c = 0; c < cpp; c++) {
      const ck = `${p}_${c}`;
      const cCreated = at();
      customers.push({
        key: `cust_${ck}`,
        customer_key: `acct_${ck}`,
        email: `customer${ck}@example.org`,
        name: `Customer ${ck}`,
        partner_key: `partner_${p}`,
        partnership_key: `pship_${p}`,
        provider_key: `cus_${ck}`,
        source_type: 'stripe',
        test: false,
        fields: [],
        created_at: cCreated,
        updated_at: cCreated + 10,
      });
      for (let t = 0; t < tpc; t++) {
        const tk = `in_${ck}_${t}`;
        const amount = 1000 + Math.floor(rnd() * 20000);
        const tCreated = at();
        transactions.push({
          key: tk,
          amount,
          amount_usd: cur === 'USD' ? amount : Math.round(amount * 1.1),
          currency: cur,
          approved: true,
          archived: false,
          category_key: null,
          product_key: 'kartra_monthly',
          customer: { key: `cust_${ck}`, email: `customer${ck}@example.org`, external_key: `acct_${ck}` },
          metadata: {},
          test: false,
          created_at: tCreated,
          updated_at: tCreated,
        });
        // 20% direct reward: 1000..20999 × 0.2, rounded half up.
        const ageDays = (end - tCreated) / 86_400_000;
        rewards.push({
          key: `rew_${ck}_${t}`,
          amount: Math.round(amount * 0.2),
          currency: cur,
          description: `20% of ${tk}`,
          reward_status: ageDays > 45 ? 'approved' : ageDays > 30 ? 'scheduled' : 'pending',
          customer: { key: `cust_${ck}`, email: `customer${ck}@example.org`, external_key: `acct_${ck}` },
          partnership: { key: `pship_${p}`, email: `partner${p}@example.com`, group: { key: group.key } },
          transaction: { key: tk, amount, currency: cur },
          invoice: null,
          offer: { key: 'offer_direct', description: 'Direct 20%' },
          trigger: { key: 'transaction' },
          action: null,
          created_at: tCreated + 1,
          updated_at: tCreated + 1,
        });
      }
    }
  }
  return { groups, partnerships, customers, transactions, rewards };
}

/** Fills a fake's store with a data set. */
export function loadDataset(store: FakeStore, d: Dataset): void {
  store.put('groups', d.groups);
  store.put('partnerships', d.partnerships);
  store.put('customers', d.customers);
  store.put('transactions', d.transactions);
  store.put('rewards', d.rewards);
}
