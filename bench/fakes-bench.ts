// The fakes' own cost per list call: generates a world, loads the five fakes and pages through their
// main lists over loopback HTTP the way the connectors read them (Stripe created-range lists with
// starting_after and expand[]=data.payments, Chargebee updated_at[between] sorted ascending with the
// keyset offset, PartnerStack min_created + starting_after, ShareASale 30-day windows in pages, Awin
// 31-day windows). Prints calls, records, total and per-call milliseconds per fake and the fake
// process's CPU time (client and fakes share the process; the client only reads the body text).
//   node bench/fakes-bench.ts [size]
import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';
import { generateScenario } from '../src/world/generate.ts';
import { buildWorld } from '../src/world/build.ts';
import { loadWorld, startFakes, type Fakes } from '../src/world/fakes.ts';

const size = Number(process.argv[2] ?? 10000);
const NOW = new Date(Date.UTC(2025, 6, 1));

let t = Date.now();
const world = buildWorld(generateScenario({ size, seed: 1, asOf: NOW }), { asOf: NOW });
const genMs = Date.now() - t;
const fakes: Fakes = await startFakes();
t = Date.now();
loadWorld(fakes, world);
const loadMs = Date.now() - t;
console.error(`size ${size}: ${world.payments.length} payments, generate ${genMs} ms, load fakes ${loadMs} ms`);

const first = world.payments.reduce((m, p) => (p.issuedAt < m ? p.issuedAt : m), world.asOf);
const fromSec = Math.floor(first.getTime() / 1000) - 2 * 86_400;
const toSec = Math.floor(NOW.getTime() / 1000);

interface Tally { calls: number; records: number; ms: number }
const tally = new Map<string, Tally>();
async function get(name: string, url: string, headers: Record<string, string>, count: (body: string) => number): Promise<string> {
  const t0 = performance.now();
  const res = await fetch(url, { headers });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${name} ${url}: ${res.status} ${text.slice(0, 200)}`);
  const e = tally.get(name) ?? { calls: 0, records: 0, ms: 0 };
  e.calls++;
  e.ms += ms;
  e.records += count(text);
  tally.set(name, e);
  return text;
}

const cpu0 = process.cpuUsage();
const wall0 = Date.now();

// Stripe
{
  const h = { authorization: `Bearer ${fakes.stripe.apiKey}` };
  for (const coll of ['customers', 'subscriptions', 'invoices', 'charges', 'refunds', 'balance_transactions']) {
    let after: string | undefined;
    for (;;) {
      const qs = new URLSearchParams({ limit: '100', 'created[gte]': String(fromSec), 'created[lte]': String(toSec) });
      if (coll === 'subscriptions') qs.set('status', 'all');
      if (coll === 'invoices') qs.append('expand[]', 'data.payments');
      if (after) qs.set('starting_after', after);
      const body = JSON.parse(await get(`stripe ${coll}`, `${fakes.stripe.url}/v1/${coll}?${qs}`, h, (b) => (JSON.parse(b) as { data: unknown[] }).data.length)) as { data: Array<{ id: string }>; has_more: boolean };
      if (!body.has_more || body.data.length === 0) break;
      after = body.data[body.data.length - 1]!.id;
    }
  }
}
// Chargebee
{
  const h = { authorization: `Basic ${Buffer.from(`${fakes.chargebee.apiKey}:`).toString('base64')}` };
  for (const res of ['customers', 'subscriptions', 'invoices', 'credit_notes']) {
    let offset: string | undefined;
    for (;;) {
      const qs = new URLSearchParams({ limit: '100', 'sort_by[asc]': 'updated_at', 'updated_at[between]': JSON.stringify([fromSec, toSec]), include_deleted: 'true' });
      if (offset) qs.set('offset', offset);
      const body = JSON.parse(await get(`chargebee ${res}`, `${fakes.chargebee.baseUrl}/${res}?${qs}`, h, (b) => (JSON.parse(b) as { list: unknown[] }).list.length)) as { next_offset?: string };
      if (!body.next_offset) break;
      offset = body.next_offset;
    }
  }
}
// PartnerStack
{
  const h = { authorization: `Basic ${Buffer.from(`${fakes.partnerstack.publicKey}:${fakes.partnerstack.secretKey}`).toString('base64')}` };
  for (const res of ['partnerships', 'customers', 'transactions', 'rewards']) {
    let after: string | undefined;
    for (;;) {
      const qs = new URLSearchParams({ limit: '250' });
      if (res !== 'partnerships') qs.set('min_created', String(fromSec * 1000 - 90 * 86_400_000));
      if (after) qs.set('starting_after', after);
      const body = (JSON.parse(await get(`partnerstack ${res}`, `${fakes.partnerstack.url}/${res}?${qs}`, h, (b) => (JSON.parse(b) as { data: { items: unknown[] } }).data.items.length)) as { data: { has_more: boolean; items: Array<{ key: string }> } }).data;
      if (!body.has_more || body.items.length === 0) break;
      after = body.items[body.items.length - 1]!.key;
    }
  }
}
// ShareASale: 30-day windows, pages of store.pageSize rows.
{
  const s = fakes.shareasale.store;
  const zone = s.timezone;
  let w = DateTime.fromSeconds(fromSec, { zone }).startOf('day');
  const end = DateTime.fromJSDate(NOW, { zone });
  while (w < end) {
    const wEnd = w.plus({ days: 29 });
    for (let page = 1; ; page++) {
      const date = new Date().toUTCString();
      const sig = createHash('sha256').update(`${s.token}:${date}:transactiondetail:${s.secret}`).digest('hex');
      const qs = new URLSearchParams({ merchantId: s.merchantId, token: s.token, version: '3.0', action: 'transactiondetail', datestart: w.toFormat('MM/dd/yyyy'), dateend: wEnd.toFormat('MM/dd/yyyy'), page: String(page) });
      const text = await get('shareasale transactiondetail', `${fakes.shareasale.url}/w.cfm?${qs}`, { 'x-shareasale-date': date, 'x-shareasale-authentication': sig }, (b) => b.split('\n').length - 2);
      if (text.split('\n').length - 2 < s.pageSize) break;
    }
    w = wEnd.plus({ days: 1 });
  }
}
// Awin: 31-day windows by transaction date, then validation date.
{
  const h = { authorization: `Bearer ${fakes.awin.store.token}` };
  for (const dateType of ['transaction', 'validation']) {
    let w = DateTime.fromSeconds(fromSec, { zone: 'UTC' }).startOf('day');
    const end = DateTime.fromJSDate(NOW, { zone: 'UTC' });
    while (w < end) {
      const wEnd = w.plus({ days: 31 });
      const qs = new URLSearchParams({ startDate: w.toFormat("yyyy-MM-dd'T'HH:mm:ss"), endDate: wEnd.toFormat("yyyy-MM-dd'T'HH:mm:ss"), timezone: 'UTC', dateType });
      await get(`awin ${dateType}`, `${fakes.awin.url}/advertisers/${fakes.awin.store.advertiserId}/transactions/?${qs}`, h, (b) => (JSON.parse(b) as unknown[]).length);
      w = wEnd;
    }
  }
}

const cpu = process.cpuUsage(cpu0);
console.error(`${'list'.padEnd(32)} ${'calls'.padStart(6)} ${'records'.padStart(9)} ${'total ms'.padStart(10)} ${'ms/call'.padStart(8)}`);
for (const [k, v] of tally) console.error(`${k.padEnd(32)} ${String(v.calls).padStart(6)} ${String(v.records).padStart(9)} ${v.ms.toFixed(0).padStart(10)} ${(v.ms / v.calls).toFixed(2).padStart(8)}`);
const calls = [...tally.values()].reduce((a, v) => a + v.calls, 0);
console.error(`all: ${calls} calls, wall ${Date.now() - wall0} ms, cpu ${Math.round((cpu.user + cpu.system) / 1000)} ms (${((cpu.user + cpu.system) / 1000 / calls).toFixed(2)} ms/call), rss ${Math.round(process.memoryUsage().rss / 1048576)} MB, maxrss ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
await fakes.close();
