// In-memory Chargebee API (v2) on 127.0.0.1 (port 0) for tests, the demo and the benchmark.
// GET list/retrieve for customers, subscriptions, invoices, credit_notes and transactions:
// list envelope {list:[{invoice:{…}}], next_offset?} (subscriptions: {subscription, customer}),
// `limit` 1–100 (default 10), opaque keyset `offset`, filters `attr[is|is_not|in|not_in|after|
// before|on|between]` on any top-level field, `sort_by[asc|desc]=created_at|updated_at` (default
// created_at ascending), `include_deleted`; Basic auth (API key as user); Chargebee error bodies;
// fault injection (5xx, 429 with Retry-After, latency).
import http from 'node:http';
import { listenOnLoopback, lowerBound, VersionedMap, ViewCache } from '../fake-http.ts';

export type CbObject = { id: string; created_at?: number; updated_at?: number; deleted?: boolean; [k: string]: unknown };

const RESOURCES = { customers: 'customer', subscriptions: 'subscription', invoices: 'invoice', credit_notes: 'credit_note', transactions: 'transaction' } as const;
type Resource = keyof typeof RESOURCES;
/** Fields `sort_by[asc|desc]` accepts. */
const SORTABLE = ['created_at', 'updated_at', 'date'];

export interface ChargebeeFakeStore {
  customers: Map<string, CbObject>;
  subscriptions: Map<string, CbObject>;
  invoices: Map<string, CbObject>;
  credit_notes: Map<string, CbObject>;
  transactions: Map<string, CbObject>;
  /** Adds or replaces objects of one resource (stored as copies). */
  add(resource: Resource, ...objs: CbObject[]): void;
  /** Like `add` without the copy: the store takes the objects over (bulk loads of freshly built objects). */
  adopt(resource: Resource, objs: CbObject[]): void;
  /** Tells the list indexes that objects of a resource were edited in place (else replace them with `add`). */
  touch(resource: Resource): void;
  clear(): void;
}

export interface ChargebeeFaults {
  fail5xx?: number;
  status5xx?: number;
  rateLimit?: number;
  /** Retry-After seconds sent with 429s (default "1"). */
  retryAfter?: string;
  latencyMs?: number;
  match?: RegExp;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

export interface ChargebeeFake {
  url: string;
  /** Base URL to configure as the connection's baseUrl (…/api/v2). */
  baseUrl: string;
  apiKey: string;
  store: ChargebeeFakeStore;
  requests: FakeRequest[];
  /**
   * Builds now each resource's sorted index for every sortable field its objects carry, which a list
   * call would otherwise build on first use after a change (a benchmark loads data, then warms, so
   * the timed run does not pay for sorting the collections, as a real API would not).
   */
  warmIndexes(): void;
  setFaults(f: ChargebeeFaults): void;
  close(): Promise<void>;
}

function createStore(): ChargebeeFakeStore {
  const s = {
    customers: new VersionedMap<string, CbObject>(),
    subscriptions: new VersionedMap<string, CbObject>(),
    invoices: new VersionedMap<string, CbObject>(),
    credit_notes: new VersionedMap<string, CbObject>(),
    transactions: new VersionedMap<string, CbObject>(),
  };
  return {
    ...s,
    add(resource, ...objs) {
      for (const o of objs) s[resource].set(o.id, structuredClone(o));
    },
    adopt(resource, objs) {
      for (const o of objs) s[resource].set(o.id, o);
    },
    touch(resource) {
      s[resource].touch();
    },
    clear() {
      for (const m of Object.values(s)) m.clear();
    },
  };
}

function cbError(res: http.ServerResponse, status: number, type: string, code: string, message: string, headers: Record<string, string> = {}): number {
  res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
  res.end(JSON.stringify({ message, type, api_error_code: code, error_code: code, error_msg: message, http_status_code: status }));
  return status;
}

/** The keyset `offset` this fake hands out (JSON [sortValue, id]); undefined when it is not JSON. */
function parseOffset(v: string): [number, string] | undefined {
  try {
    return JSON.parse(v) as [number, string];
  } catch {
    return undefined;
  }
}

function parseJsonArray(v: string): unknown[] {
  try {
    const a: unknown = JSON.parse(v);
    return Array.isArray(a) ? a : [v];
  } catch {
    return v.split(',');
  }
}

function matches(o: CbObject, field: string, op: string, value: string): boolean {
  const raw = o[field];
  const str = raw === undefined || raw === null ? '' : String(raw);
  const n = Number(raw);
  switch (op) {
    case 'is':
      return str === value;
    case 'is_not':
      return str !== value;
    case 'in':
      return parseJsonArray(value).map(String).includes(str);
    case 'not_in':
      return !parseJsonArray(value).map(String).includes(str);
    case 'after':
      return n > Number(value);
    case 'before':
      return n < Number(value);
    case 'on':
      return Math.floor(n / 86_400) === Math.floor(Number(value) / 86_400);
    case 'between': {
      const [a, b] = parseJsonArray(value).map(Number);
      return n >= a! && n <= b!;
    }
    case 'is_present':
      return value === 'true' ? raw !== undefined && raw !== null : raw === undefined || raw === null;
    default:
      return true;
  }
}

export async function startChargebeeFake(opts: { apiKey?: string; port?: number } = {}): Promise<ChargebeeFake> {
  const apiKey = opts.apiKey ?? 'test_fake_cb_key';
  const store = createStore();
  const requests: FakeRequest[] = [];
  let faults: ChargebeeFaults = {};

  const wrap = (resource: Resource, o: CbObject): Record<string, unknown> => {
    const key = RESOURCES[resource];
    if (resource === 'subscriptions') {
      const cust = store.customers.get(String(o.customer_id));
      return { subscription: o, ...(cust ? { customer: cust } : {}) };
    }
    return { [key]: o };
  };

  const indexes = new Map<string, { version: number; sorted: CbObject[]; keys: number[] | null; views: ViewCache<CbObject[]> }>();
  /** A resource sorted ascending by (field, id), per store change; keys null when a value is not a finite number. */
  const sortedIndex = (resource: Resource, field: string): { version: number; sorted: CbObject[]; keys: number[] | null; views: ViewCache<CbObject[]> } => {
    const map = store[resource];
    // A map swapped for a plain Map has no version: rebuild on every request (NaN never matches).
    const version = map instanceof VersionedMap ? map.version : NaN;
    const id = `${resource}|${field}`;
    const hit = indexes.get(id);
    if (hit && hit.version === version) return hit;
    const val = (o: CbObject): number => Number(o[field] ?? 0);
    const finite = [...map.values()].every((o) => typeof o[field] === 'number' && Number.isFinite(o[field]));
    const sorted = [...map.values()].sort((a, b) => val(a) - val(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const idx = { version, sorted, keys: finite ? sorted.map(val) : null, views: new ViewCache<CbObject[]>() };
    indexes.set(id, idx);
    return idx;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, q: Record<string, string>): Promise<number> => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const f = faults;
    if (!f.match || f.match.test(u.pathname)) {
      if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
      if (f.rateLimit && f.rateLimit > 0) {
        f.rateLimit--;
        return cbError(res, 429, 'operation_failed', 'api_request_limit_exceeded', 'Sorry, access has been blocked temporarily due to request count exceeding acceptable limits.', { 'retry-after': f.retryAfter ?? '1' });
      }
      if (f.fail5xx && f.fail5xx > 0) {
        f.fail5xx--;
        return cbError(res, f.status5xx ?? 500, 'internal_error', 'internal_error', 'Sorry, something went wrong when trying to process the request.');
      }
    }
    const auth = req.headers.authorization ?? '';
    const user = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':')[0] : '';
    if (user !== apiKey) return cbError(res, 401, 'invalid_request', 'api_authentication_failed', 'Sorry, authentication failed. Invalid api key');
    if (req.method !== 'GET') return cbError(res, 405, 'invalid_request', 'method_not_supported', 'The fake Chargebee API is read-only.');
    const m = /^\/api\/v2\/([a-z_]+)(?:\/([^/]+))?$/.exec(u.pathname);
    const resource = m?.[1] as Resource | undefined;
    if (!m || !resource || !(resource in RESOURCES)) return cbError(res, 404, 'invalid_request', 'resource_not_found', `Unknown path ${u.pathname}`);
    const coll = store[resource];
    if (m[2]) {
      const o = coll.get(decodeURIComponent(m[2]));
      if (!o) return cbError(res, 404, 'invalid_request', 'resource_not_found', `${RESOURCES[resource]} not found for id ${m[2]}`);
      res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
      res.end(JSON.stringify(wrap(resource, o)));
      return 200;
    }
    const limit = q.limit === undefined ? 10 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) return cbError(res, 400, 'invalid_request', 'param_wrong_value', 'limit : invalid value (1 to 100)');
    let sortField = 'created_at';
    let dir = 1;
    if (q['sort_by[asc]']) sortField = q['sort_by[asc]'];
    if (q['sort_by[desc]']) {
      sortField = q['sort_by[desc]'];
      dir = -1;
    }
    if (!SORTABLE.includes(sortField)) return cbError(res, 400, 'invalid_request', 'param_wrong_value', `sort_by : ${sortField} is not sortable`);
    const filters = Object.entries(q)
      .map(([k, v]) => {
        const fm = /^([a-z_]+)\[([a-z_]+)\]$/.exec(k);
        return fm && fm[1] !== 'sort_by' ? { field: fm[1]!, op: fm[2]!, value: v } : null;
      })
      .filter((x): x is { field: string; op: string; value: string } => x !== null);
    const includeDeleted = q.include_deleted === 'true';
    const sortVal = (o: CbObject): number => Number(o[sortField] ?? 0);
    const idx = sortedIndex(resource, sortField);
    let all: CbObject[];
    if (!idx.keys) {
      // Some sort value is not a finite number: the plain way, filtering and sorting everything.
      all = [...coll.values()]
        .filter((o) => includeDeleted || !o.deleted)
        .filter((o) => filters.every((fl) => matches(o, fl.field, fl.op, fl.value)))
        .sort((a, b) => dir * (sortVal(a) - sortVal(b)) || (a.id < b.id ? -dir : a.id > b.id ? dir : 0));
      if (q.offset) {
        const cursor = parseOffset(q.offset);
        if (cursor === undefined) return cbError(res, 400, 'invalid_request', 'param_wrong_value', 'offset : invalid value');
        const [cv, cid] = cursor;
        all = all.filter((o) => dir * (sortVal(o) - cv) > 0 || (sortVal(o) === cv && dir * (o.id < cid ? -1 : o.id > cid ? 1 : 0) > 0));
      }
    } else {
      // Ascending (value, id) index, sorted once per change: a range filter on the sort field is a
      // binary search, other filters are applied once per distinct query (cached until the resource
      // changes), the keyset offset is a binary search; descending reads the same list backwards.
      const keys = idx.keys;
      let lo = 0;
      let hi = keys.length;
      const rest: typeof filters = [];
      for (const fl of filters) {
        if (fl.field !== sortField) rest.push(fl);
        else if (fl.op === 'after') lo = Math.max(lo, lowerBound(keys, (v) => v > Number(fl.value)));
        else if (fl.op === 'before') hi = Math.min(hi, lowerBound(keys, (v) => !(v < Number(fl.value))));
        else if (fl.op === 'between') {
          const [a, b] = parseJsonArray(fl.value).map(Number);
          lo = Math.max(lo, lowerBound(keys, (v) => v >= a!));
          hi = Math.min(hi, lowerBound(keys, (v) => !(v <= b!)));
        } else rest.push(fl);
      }
      // NaN bounds match nothing (every comparison is false).
      if (hi < lo) hi = lo;
      let view = idx.sorted;
      if (rest.length > 0 || !includeDeleted) {
        const { offset: _o, limit: _l, ...key } = q;
        const range = [lo, hi];
        view = idx.views.get(idx.version, JSON.stringify(key), () => idx.sorted.slice(range[0], range[1]).filter((o) => (includeDeleted || !o.deleted) && rest.every((fl) => matches(o, fl.field, fl.op, fl.value))));
        lo = 0;
        hi = view.length;
      }
      if (q.offset) {
        const cursor = parseOffset(q.offset);
        if (cursor === undefined) return cbError(res, 400, 'invalid_request', 'param_wrong_value', 'offset : invalid value');
        const [cv, cid] = cursor;
        const after = (o: CbObject): boolean => dir * (sortVal(o) - cv) > 0 || (sortVal(o) === cv && dir * (o.id < cid ? -1 : o.id > cid ? 1 : 0) > 0);
        if (typeof cv === 'number' && typeof cid === 'string') {
          // Ascending: "after" is false…true; descending (read backwards): true…false.
          if (dir === 1) lo = lowerBound(view, after, lo, hi);
          else hi = lowerBound(view, (o) => !after(o), lo, hi);
        } else {
          const kept = view.slice(lo, hi).filter(after);
          view = kept;
          lo = 0;
          hi = kept.length;
        }
      }
      // The first limit + 1 items in list order (one more tells whether there is a next page).
      all = dir === 1 ? view.slice(lo, Math.min(hi, lo + limit + 1)) : view.slice(Math.max(lo, hi - limit - 1), hi).reverse();
    }
    const page = all.slice(0, limit);
    const last = page[page.length - 1];
    const body: Record<string, unknown> = { list: page.map((o) => wrap(resource, o)) };
    if (all.length > limit && last) body.next_offset = JSON.stringify([sortVal(last), last.id]);
    res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
    res.end(JSON.stringify(body));
    return 200;
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = Object.fromEntries(u.searchParams);
    const entry: FakeRequest = { method: req.method ?? 'GET', path: u.pathname, query: q, status: 0 };
    requests.push(entry);
    req.resume();
    handle(req, res, q)
      .then((s) => (entry.status = s))
      .catch((err: unknown) => {
        entry.status = 500;
        if (!res.headersSent) cbError(res, 500, 'internal_error', 'internal_error', String(err));
      });
  });
  server.keepAliveTimeout = 1000;
  const listening = await listenOnLoopback(server, opts.port ?? 0);
  const url = listening.origin;
  return {
    url,
    baseUrl: `${url}/api/v2`,
    apiKey,
    store,
    requests,
    warmIndexes() {
      for (const r of Object.keys(RESOURCES) as Resource[]) {
        const first = store[r].values().next().value;
        if (first) for (const f of SORTABLE) if (f in first) sortedIndex(r, f);
      }
    },
    setFaults: (f) => {
      faults = { ...f };
    },
    close: listening.close,
  };
}
