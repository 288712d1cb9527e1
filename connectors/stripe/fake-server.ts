// In-memory Stripe API on 127.0.0.1 (port 0) for tests, the demo and the benchmark. Serves GET
// list/retrieve for customers, subscriptions, invoices, invoice_payments, refunds, disputes,
// charges, payment_intents and balance_transactions in Stripe's shapes: list envelope
// {object:'list', url, data, has_more}, newest-first, `limit` 1–100, `starting_after` /
// `ending_before`, `created[gt|gte|lt|lte]`, `expand[]` (any id field, `data.` prefix on lists; the
// includable `payments` of an invoice: its first 10 invoice payments, newest first, with has_more),
// Bearer auth, Stripe error bodies, and fault injection (5xx, 429, latency).
//
// `/v1/events` (list and retrieve) serves the change feed the connector reads between sweeps: the
// store records an event whenever it takes in an object — for a new object the lifecycle its own
// timestamps tell (created; a subscription's trial end and cancellation; an invoice paid, voided or
// marked uncollectible; a refund and its charge refunded; a dispute opened and closed), for a
// replaced object that differs the change (status → the specific type, else `*.updated`) at the
// store's clock. Filters: `type` (exact or `prefix.*`), `types[]`, `created`. Events are not expired
// after 30 days (the connector checks retention itself). Objects edited in place (`touch`) record none.
import http from 'node:http';
import { listenOnLoopback, lowerBound, VersionedMap, ViewCache } from '../fake-http.ts';

export type StripeObject = { id: string; object: string; created?: number; [k: string]: unknown };

const COLLECTIONS = ['customers', 'subscriptions', 'invoices', 'invoice_payments', 'refunds', 'disputes', 'charges', 'payment_intents', 'balance_transactions', 'events'] as const;
type Collection = (typeof COLLECTIONS)[number];
const BY_OBJECT: Record<string, Collection> = {
  customer: 'customers',
  subscription: 'subscriptions',
  invoice: 'invoices',
  invoice_payment: 'invoice_payments',
  refund: 'refunds',
  dispute: 'disputes',
  charge: 'charges',
  payment_intent: 'payment_intents',
  balance_transaction: 'balance_transactions',
  event: 'events',
};

export interface StripeFakeStore {
  /** Replace objects through `add` (or Map#set); edit a stored object in place only with `touch(collection)` after. */
  collections: Record<Collection, Map<string, StripeObject>>;
  /** Adds or replaces objects (stored as copies); the collection is chosen by `object`. */
  add(...objs: StripeObject[]): void;
  /** Like `add` without the copy: the store takes the objects over (bulk loads of freshly built objects). */
  adopt(objs: StripeObject[]): void;
  /** Tells the list indexes that objects of a collection were edited in place. */
  touch(collection: Collection): void;
  /** Newest-first list view of a collection (sorted once per change; used by the list endpoint). */
  index(collection: Collection): CollectionIndex;
  get(id: string): StripeObject | undefined;
  /** Invoice payments of an invoice (index kept by `add`). */
  paymentsOf(invoiceId: string): StripeObject[];
  /** The clock (unix seconds) that stamps events for replaced objects; tests set it. Default: wall clock. */
  clock: () => number;
  /** Records one event (as `add` does for changes); returns it. */
  recordEvent(type: string, object: StripeObject, created: number, previous?: Record<string, unknown>): StripeObject;
  clear(): void;
}

export interface StripeFaults {
  /** The next N matching requests answer HTTP `status5xx` (default 500). */
  fail5xx?: number;
  status5xx?: number;
  /** The next N matching requests answer 429 (rate limited). */
  rateLimit?: number;
  /** Retry-After value sent with 429s (Stripe does not document one; off by default). */
  retryAfter?: string;
  /** Added delay for every matching request. */
  latencyMs?: number;
  /** Only requests whose path matches are affected. */
  match?: RegExp;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, unknown>;
  status: number;
}

export interface StripeFake {
  url: string;
  apiKey: string;
  store: StripeFakeStore;
  requests: FakeRequest[];
  /**
   * Builds now every collection's sorted index and the equality indexes that list filters naming one
   * object use (invoice payments by invoice or payment intent, invoices by subscription, refunds and
   * disputes by charge or payment intent), which a list call would otherwise build on first use after
   * a change (a benchmark loads data, then warms, so the timed run does not pay for sorting the
   * collections, as a real API would not). Filters by customer still build theirs on first use.
   */
  warmIndexes(): void;
  setFaults(f: StripeFaults): void;
  close(): Promise<void>;
}

/**
 * A collection sorted newest first (created desc, id desc), rebuilt when the collection changes, with
 * the `created` keys alongside for binary search and lazily built equality indexes (field → value →
 * objects, newest first) for the list filters that name one object (customer, invoice, charge …).
 */
export interface CollectionIndex {
  version: number;
  sorted: StripeObject[];
  created: number[];
  /** Every object has a finite numeric `created` (else list falls back to filtering the whole collection). */
  numericCreated: boolean;
  by(field: EqField): Map<string, StripeObject[]>;
  views: ViewCache<StripeObject[]>;
}

type EqField = 'customer' | 'invoice' | 'payment.payment_intent' | 'charge' | 'payment_intent' | 'subscription';
const eqValue = (o: StripeObject, f: EqField): string | undefined => {
  switch (f) {
    case 'payment.payment_intent':
      return idOf((o.payment as Record<string, unknown> | undefined)?.payment_intent);
    case 'subscription':
      return (o.parent as { subscription_details?: { subscription?: string } } | undefined)?.subscription_details?.subscription;
    default:
      return idOf(o[f]);
  }
};

/** The equality indexes listView uses per collection besides `customer` (see listView). */
const WARM_EQ: Partial<Record<Collection, EqField[]>> = {
  invoice_payments: ['invoice', 'payment.payment_intent'],
  invoices: ['subscription'],
  refunds: ['charge', 'payment_intent'],
  disputes: ['charge', 'payment_intent'],
};

/** Pinned like the connector's SDK; events render in the account's version at the time (Stripe docs). */
const EVENT_API_VERSION = '2025-03-31.basil';
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** The events a newly stored object's own timestamps imply (its lifecycle up to the state it is in). */
function lifecycleEvents(o: StripeObject, get: (id: string) => StripeObject | undefined): Array<[string, StripeObject, number]> {
  const created = num(o.created);
  if (created === null) return [];
  const out: Array<[string, StripeObject, number]> = [];
  switch (o.object) {
    case 'customer':
      out.push(['customer.created', o, created]);
      break;
    case 'subscription': {
      out.push(['customer.subscription.created', o, created]);
      const trialEnd = num(o.trial_end);
      const ended = num(o.ended_at) ?? num(o.canceled_at);
      if (trialEnd !== null && o.status !== 'trialing' && (ended === null || trialEnd < ended)) out.push(['customer.subscription.updated', o, trialEnd]);
      if (o.status === 'canceled' || o.status === 'incomplete_expired') out.push(['customer.subscription.deleted', o, ended ?? created]);
      break;
    }
    case 'invoice': {
      out.push(['invoice.created', o, created]);
      const st = (o.status_transitions ?? {}) as Record<string, unknown>;
      if (o.status === 'paid') out.push(['invoice.paid', o, num(st.paid_at) ?? created]);
      if (o.status === 'void') out.push(['invoice.voided', o, num(st.voided_at) ?? created]);
      if (o.status === 'uncollectible') out.push(['invoice.marked_uncollectible', o, num(st.marked_uncollectible_at) ?? created]);
      break;
    }
    case 'refund': {
      out.push(['refund.created', o, created]);
      const charge = get(idOf(o.charge) ?? '');
      if (charge) out.push(['charge.refunded', charge, created]);
      if (o.status === 'failed') out.push(['refund.failed', o, created]);
      break;
    }
    case 'dispute': {
      out.push(['charge.dispute.created', o, created]);
      if (o.status === 'won' || o.status === 'lost') {
        const bts = Array.isArray(o.balance_transactions) ? (o.balance_transactions as Array<{ created?: unknown }>) : [];
        out.push(['charge.dispute.closed', o, Math.max(created, ...bts.map((b) => num(b.created) ?? created))]);
      }
      break;
    }
  }
  return out;
}

/** The event type for a stored object replaced by a different version, or null for objects without events. */
function changeEventType(prev: StripeObject, next: StripeObject): string | null {
  const changed = prev.status !== next.status;
  switch (next.object) {
    case 'customer':
      return next.deleted === true ? 'customer.deleted' : 'customer.updated';
    case 'subscription':
      return changed && (next.status === 'canceled' || next.status === 'incomplete_expired') ? 'customer.subscription.deleted' : 'customer.subscription.updated';
    case 'invoice':
      if (changed && next.status === 'paid') return 'invoice.paid';
      if (changed && next.status === 'void') return 'invoice.voided';
      if (changed && next.status === 'uncollectible') return 'invoice.marked_uncollectible';
      return 'invoice.updated';
    case 'refund':
      return changed && next.status === 'failed' ? 'refund.failed' : 'refund.updated';
    case 'dispute':
      return changed && (next.status === 'won' || next.status === 'lost') ? 'charge.dispute.closed' : 'charge.dispute.updated';
    default:
      return null;
  }
}

function createStore(): StripeFakeStore {
  const collections = Object.fromEntries(COLLECTIONS.map((c) => [c, new VersionedMap<string, StripeObject>()])) as Record<Collection, VersionedMap<string, StripeObject>>;
  const byInvoice = new Map<string, Set<string>>();
  const indexes = new Map<Collection, CollectionIndex>();
  let eventSeq = 0;
  const recordEvent = (type: string, object: StripeObject, created: number, previous?: Record<string, unknown>): StripeObject => {
    // Ids grow with recording order, so events of one second list newest (last recorded) first.
    const e: StripeObject = {
      id: `evt_${String(++eventSeq).padStart(12, '0')}`,
      object: 'event',
      api_version: EVENT_API_VERSION,
      created,
      // The object as stored when the event was recorded (a reference: stored objects are never edited).
      data: previous ? { object, previous_attributes: previous } : { object },
      livemode: false,
      pending_webhooks: 0,
      request: { id: null, idempotency_key: null },
      type,
    };
    collections.events.set(e.id, e);
    return e;
  };
  const put = (o: StripeObject, copy: boolean): void => {
    const c = BY_OBJECT[o.object];
    if (!c) throw new Error(`fake stripe: unknown object type "${o.object}"`);
    const stored = copy ? structuredClone(o) : o;
    if (c !== 'events') {
      const prev = collections[c].get(o.id);
      if (!prev) {
        for (const [type, obj, at] of lifecycleEvents(stored, (id) => (id === o.id ? stored : storeApi.get(id)))) recordEvent(type, obj, at);
      } else if (prev !== o && JSON.stringify(prev) !== JSON.stringify(stored)) {
        const type = changeEventType(prev, stored);
        if (type) recordEvent(type, stored, storeApi.clock(), prev.status !== stored.status ? { status: prev.status } : {});
      }
    }
    if (c === 'invoice_payments') {
      const prev = collections.invoice_payments.get(o.id);
      if (prev) byInvoice.get(idOf(prev.invoice) ?? '')?.delete(o.id);
      const inv = idOf(o.invoice) ?? '';
      let set = byInvoice.get(inv);
      if (!set) byInvoice.set(inv, (set = new Set()));
      set.add(o.id);
    }
    collections[c].set(o.id, stored);
  };
  const storeApi: StripeFakeStore = {
    collections,
    clock: () => Math.floor(Date.now() / 1000),
    recordEvent,
    add(...objs) {
      for (const o of objs) put(o, true);
    },
    adopt(objs) {
      for (const o of objs) put(o, false);
    },
    touch(c) {
      collections[c].touch();
    },
    index(c) {
      const map = collections[c] as Map<string, StripeObject>;
      // A collection swapped for a plain Map has no version: rebuild on every request (NaN never matches).
      const version = map instanceof VersionedMap ? map.version : NaN;
      const hit = indexes.get(c);
      if (hit && hit.version === version) return hit;
      const sorted = [...map.values()].sort(newestFirst);
      const eq = new Map<EqField, Map<string, StripeObject[]>>();
      const idx: CollectionIndex = {
        version,
        sorted,
        created: sorted.map((o) => o.created ?? 0),
        numericCreated: sorted.every((o) => typeof o.created === 'number' && Number.isFinite(o.created)),
        by(f) {
          let m = eq.get(f);
          if (!m) {
            m = new Map();
            for (const o of sorted) {
              const v = eqValue(o, f);
              if (v === undefined) continue;
              const l = m.get(v);
              if (l) l.push(o);
              else m.set(v, [o]);
            }
            eq.set(f, m);
          }
          return m;
        },
        views: new ViewCache(),
      };
      indexes.set(c, idx);
      return idx;
    },
    paymentsOf(invoiceId) {
      return [...(byInvoice.get(invoiceId) ?? [])].map((id) => collections.invoice_payments.get(id)).filter((o): o is StripeObject => !!o);
    },
    get(id) {
      for (const c of COLLECTIONS) {
        const o = collections[c].get(id);
        if (o) return o;
      }
      return undefined;
    },
    clear() {
      for (const c of COLLECTIONS) collections[c].clear();
      byInvoice.clear();
      indexes.clear();
    },
  };
  return storeApi;
}

/** Parses `a[b][0]=x` style query strings into nested objects (arrays for numeric or empty keys). */
export function parseBracketQuery(search: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of search) {
    const parts = rawKey.split('[').map((p, i) => (i === 0 ? p : p.replace(/\]$/, '')));
    let node: Record<string, unknown> | unknown[] = out;
    parts.forEach((p, i) => {
      const last = i === parts.length - 1;
      const isArr = p === '' || /^\d+$/.test(p);
      if (Array.isArray(node)) {
        if (last) node.push(value);
        else {
          const next: Record<string, unknown> = {};
          node.push(next);
          node = next;
        }
        return;
      }
      if (last) {
        node[p] = value;
        return;
      }
      const nextIsArr = parts[i + 1] === '' || /^\d+$/.test(parts[i + 1]!);
      if (node[p] === undefined) node[p] = nextIsArr ? [] : {};
      node = node[p] as Record<string, unknown> | unknown[];
      void isArr;
    });
  }
  return out;
}

function expandPath(store: StripeFakeStore, value: unknown, path: string[]): unknown {
  if (path.length === 0 || value === null || value === undefined) return value;
  if (Array.isArray(value)) return value.map((v) => expandPath(store, v, path));
  if (typeof value !== 'object') return value;
  const [head, ...rest] = path;
  const obj = { ...(value as Record<string, unknown>) };
  let child = obj[head!];
  // Stored objects are never modified here: the path down to an expanded field is copied shallowly
  // (`{ ...value }` above, `map` for arrays) and the reply is serialized right away.
  if (typeof child === 'string') child = store.get(child) ?? child;
  else if (child === undefined && head === 'payments' && obj.object === 'invoice' && typeof obj.id === 'string') {
    // Includable list: the invoice's first 10 invoice payments, newest first (as the list endpoint orders them).
    const all = store.paymentsOf(obj.id).sort(newestFirst);
    child = { object: 'list', url: `/v1/invoice_payments?invoice=${obj.id}`, has_more: all.length > 10, data: all.slice(0, 10) };
  }
  obj[head!] = expandPath(store, child, rest);
  return obj;
}

const newestFirst = (a: StripeObject, b: StripeObject): number => (b.created ?? 0) - (a.created ?? 0) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

function matchesCreated(o: StripeObject, f: unknown): boolean {
  if (f === undefined) return true;
  const c = o.created ?? 0;
  if (typeof f === 'string') return c === Number(f);
  const r = f as Record<string, string>;
  if (r.gt !== undefined && !(c > Number(r.gt))) return false;
  if (r.gte !== undefined && !(c >= Number(r.gte))) return false;
  if (r.lt !== undefined && !(c < Number(r.lt))) return false;
  if (r.lte !== undefined && !(c <= Number(r.lte))) return false;
  return true;
}

const idOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : v && typeof v === 'object' ? ((v as { id?: string }).id ?? undefined) : undefined);

function filterFor(coll: Collection, q: Record<string, unknown>): (o: StripeObject) => boolean {
  return (o) => {
    if (!matchesCreated(o, q.created)) return false;
    if (typeof q.customer === 'string' && idOf(o.customer) !== q.customer) return false;
    if (coll === 'subscriptions') {
      const status = (q.status as string | undefined) ?? 'default';
      if (status === 'all') return true;
      if (status === 'default') return o.status !== 'canceled' && o.status !== 'incomplete_expired';
      if (status === 'ended') return o.status === 'canceled' || o.status === 'incomplete_expired';
      return o.status === status;
    }
    if (coll === 'invoices' && typeof q.subscription === 'string') {
      const p = o.parent as { subscription_details?: { subscription?: string } } | undefined;
      if (p?.subscription_details?.subscription !== q.subscription) return false;
    }
    if (coll === 'invoices' && typeof q.status === 'string' && o.status !== q.status) return false;
    if (coll === 'invoice_payments') {
      if (typeof q.invoice === 'string' && idOf(o.invoice) !== q.invoice) return false;
      const p = q.payment as Record<string, string> | undefined;
      const op = o.payment as Record<string, unknown> | undefined;
      if (p?.payment_intent && idOf(op?.payment_intent) !== p.payment_intent) return false;
      if (p?.type && op?.type !== p.type) return false;
      if (typeof q.status === 'string' && o.status !== q.status) return false;
    }
    if ((coll === 'refunds' || coll === 'disputes') && typeof q.charge === 'string' && idOf(o.charge) !== q.charge) return false;
    if ((coll === 'refunds' || coll === 'disputes') && typeof q.payment_intent === 'string' && idOf(o.payment_intent) !== q.payment_intent) return false;
    if (coll === 'events') {
      const t = String(o.type);
      if (typeof q.type === 'string' && !(q.type.endsWith('*') ? t.startsWith(q.type.slice(0, -1)) : t === q.type)) return false;
      if (Array.isArray(q.types) && !q.types.includes(t)) return false;
    }
    return true;
  };
}

/** A list's matching objects, newest first: arr[lo, hi). */
interface ListView {
  arr: StripeObject[];
  lo: number;
  hi: number;
}

/**
 * The objects a list request matches, in list order, without scanning the collection: the `created`
 * range is a binary search over the sorted index, a filter naming one object (customer, invoice,
 * charge, payment intent, subscription) starts from that value's entries, and other filters (status …)
 * are applied once per distinct query and cached until the collection changes.
 */
function listView(store: StripeFakeStore, coll: Collection, q: Record<string, unknown>): ListView {
  const idx = store.index(coll);
  const f = filterFor(coll, q);
  const whole = (arr: StripeObject[]): ListView => ({ arr, lo: 0, hi: arr.length });
  if (!idx.numericCreated) return whole(idx.sorted.filter(f));
  const p = q.payment as Record<string, unknown> | undefined;
  let eq: [EqField, string] | undefined;
  if (typeof q.customer === 'string') eq = ['customer', q.customer];
  else if (coll === 'invoice_payments' && typeof q.invoice === 'string') eq = ['invoice', q.invoice];
  else if (coll === 'invoice_payments' && typeof p?.payment_intent === 'string') eq = ['payment.payment_intent', p.payment_intent];
  else if (coll === 'invoices' && typeof q.subscription === 'string') eq = ['subscription', q.subscription];
  else if ((coll === 'refunds' || coll === 'disputes') && typeof q.charge === 'string') eq = ['charge', q.charge];
  else if ((coll === 'refunds' || coll === 'disputes') && typeof q.payment_intent === 'string') eq = ['payment_intent', q.payment_intent];
  if (eq) return whole((idx.by(eq[0]).get(eq[1]) ?? []).filter(f));
  let lo = 0;
  let hi = idx.sorted.length;
  const c = q.created;
  if (c !== undefined) {
    // matchesCreated split in its upper and lower bound; over created-descending keys the first is
    // false…true and the second true…false.
    const r = (typeof c === 'string' ? {} : c) as Record<string, string>;
    const upperOk = (v: number): boolean => (typeof c === 'string' ? v <= Number(c) : (r.lt === undefined || v < Number(r.lt)) && (r.lte === undefined || v <= Number(r.lte)));
    const lowerOk = (v: number): boolean => (typeof c === 'string' ? v >= Number(c) : (r.gt === undefined || v > Number(r.gt)) && (r.gte === undefined || v >= Number(r.gte)));
    lo = lowerBound(idx.created, upperOk);
    hi = lowerBound(idx.created, (v) => !lowerOk(v), lo);
  }
  const residual =
    (coll === 'subscriptions' && q.status !== 'all') ||
    (coll === 'invoices' && q.status !== undefined) ||
    (coll === 'invoice_payments' && (q.invoice !== undefined || q.payment !== undefined || q.status !== undefined)) ||
    ((coll === 'refunds' || coll === 'disputes') && (q.charge !== undefined || q.payment_intent !== undefined)) ||
    (coll === 'invoices' && q.subscription !== undefined) ||
    (coll === 'events' && (q.type !== undefined || q.types !== undefined)) ||
    q.customer !== undefined;
  if (!residual) return { arr: idx.sorted, lo, hi };
  const { starting_after: _a, ending_before: _b, limit: _l, expand: _e, ...rest } = q;
  return whole(idx.views.get(idx.version, JSON.stringify(rest), () => idx.sorted.slice(lo, hi).filter(f)));
}

/** Position of object `id` within the view (−1 when it is not in it). */
function positionOf(store: StripeFakeStore, coll: Collection, v: ListView, id: string): number {
  const anchor = store.collections[coll].get(id);
  if (!anchor) return -1;
  if (!store.index(coll).numericCreated) {
    for (let i = v.lo; i < v.hi; i++) if (v.arr[i]!.id === id) return i - v.lo;
    return -1;
  }
  const i = lowerBound(v.arr, (o) => newestFirst(o, anchor) >= 0, v.lo, v.hi);
  return i < v.hi && v.arr[i] === anchor ? i - v.lo : -1;
}

function stripeError(res: http.ServerResponse, status: number, type: string, message: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): number {
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${Date.now()}`, ...headers });
  res.end(JSON.stringify({ error: { type, message, ...extra } }));
  return status;
}

function expandList(q: Record<string, unknown>): string[] {
  const e = q.expand;
  if (Array.isArray(e)) return e.map(String);
  if (typeof e === 'string') return [e];
  return [];
}

export async function startStripeFake(opts: { apiKey?: string; port?: number } = {}): Promise<StripeFake> {
  const apiKey = opts.apiKey ?? 'sk_test_fake';
  const store = createStore();
  const requests: FakeRequest[] = [];
  let faults: StripeFaults = {};

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<number> => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const q = parseBracketQuery(u.searchParams);
    const f = faults;
    if (!f.match || f.match.test(u.pathname)) {
      if (f.latencyMs) await new Promise((r) => setTimeout(r, f.latencyMs));
      if (f.rateLimit && f.rateLimit > 0) {
        f.rateLimit--;
        return stripeError(res, 429, 'invalid_request_error', 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.', { code: 'rate_limit' }, f.retryAfter ? { 'retry-after': f.retryAfter } : {});
      }
      if (f.fail5xx && f.fail5xx > 0) {
        f.fail5xx--;
        return stripeError(res, f.status5xx ?? 500, 'api_error', 'An unknown error occurred on our side.');
      }
    }
    const auth = req.headers.authorization ?? '';
    const key = auth.startsWith('Bearer ') ? auth.slice(7) : auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':')[0] : '';
    if (key !== apiKey) return stripeError(res, 401, 'invalid_request_error', `Invalid API Key provided: ${key ? `${key.slice(0, 8)}****` : '(none)'}`);
    if (req.method !== 'GET') return stripeError(res, 405, 'invalid_request_error', 'The fake Stripe API is read-only.');
    const m = /^\/v1\/([a-z_]+)(?:\/([^/]+))?$/.exec(u.pathname);
    const coll = m?.[1] as Collection | undefined;
    if (!m || !coll || !(COLLECTIONS as readonly string[]).includes(coll)) return stripeError(res, 404, 'invalid_request_error', `Unrecognized request URL (GET: ${u.pathname}).`);
    const expand = expandList(q);
    if (m[2]) {
      const obj = store.collections[coll].get(decodeURIComponent(m[2]));
      if (!obj) return stripeError(res, 404, 'invalid_request_error', `No such ${coll.replace(/s$/, '')}: '${m[2]}'`, { code: 'resource_missing', param: 'id' });
      let out: unknown = obj;
      for (const p of expand) out = expandPath(store, out, p.split('.'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(out));
      return 200;
    }
    const limit = q.limit === undefined ? 10 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) return stripeError(res, 400, 'invalid_request_error', 'Invalid integer: limit must be between 1 and 100', { param: 'limit' });
    if (q.starting_after && q.ending_before) return stripeError(res, 400, 'invalid_request_error', 'You may only specify one of these parameters: ending_before, starting_after.');
    const all = listView(store, coll, q);
    const n = all.hi - all.lo;
    let startIdx = 0;
    let endIdx = n;
    if (typeof q.starting_after === 'string') {
      const i = positionOf(store, coll, all, q.starting_after);
      if (i < 0 && !store.get(q.starting_after)) return stripeError(res, 400, 'invalid_request_error', `No such object: '${q.starting_after}'`, { param: 'starting_after' });
      startIdx = i + 1;
    }
    let page: StripeObject[];
    if (typeof q.ending_before === 'string') {
      endIdx = positionOf(store, coll, all, q.ending_before);
      // As Array#slice(max(0, end − limit), end) on the whole list (end −1 when not found: all but the last).
      const from = Math.max(0, endIdx - limit);
      const to = endIdx < 0 ? n + endIdx : endIdx;
      page = all.arr.slice(all.lo + from, all.lo + Math.max(from, to));
    } else page = all.arr.slice(all.lo + Math.min(n, startIdx), all.lo + Math.min(n, startIdx + limit));
    const hasMore = typeof q.ending_before === 'string' ? endIdx - limit > 0 : startIdx + limit < n;
    // Stored objects are serialized as they are (never modified; expansion copies the path it changes).
    let data: unknown[] = page;
    for (const p of expand) {
      const path = p.split('.');
      if (path[0] !== 'data') return stripeError(res, 400, 'invalid_request_error', `This property cannot be expanded (${p}). Did you mean data.${p}?`);
      if (path.length > 5) return stripeError(res, 400, 'invalid_request_error', `You cannot expand more than 4 levels of a property (${p}).`);
      data = data.map((d) => expandPath(store, d, path.slice(1)));
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'list', url: `/v1/${coll}`, has_more: hasMore, data }));
    return 200;
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: FakeRequest = { method: req.method ?? 'GET', path: u.pathname, query: parseBracketQuery(u.searchParams), status: 0 };
    requests.push(entry);
    req.resume();
    handle(req, res)
      .then((s) => (entry.status = s))
      .catch((err: unknown) => {
        entry.status = 500;
        if (!res.headersSent) stripeError(res, 500, 'api_error', String(err));
      });
  });
  server.keepAliveTimeout = 1000;
  const listening = await listenOnLoopback(server, opts.port ?? 0);
  return {
    url: listening.origin,
    apiKey,
    store,
    requests,
    warmIndexes() {
      for (const c of COLLECTIONS) {
        if (store.collections[c].size === 0) continue;
        const idx = store.index(c);
        for (const f of WARM_EQ[c] ?? []) idx.by(f);
      }
    },
    setFaults: (f) => {
      faults = { ...f };
    },
    close: listening.close,
  };
}
