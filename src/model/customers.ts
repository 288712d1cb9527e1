// Upserts customers with their identities in each system. The same real customer shows up as a
// Stripe/Chargebee customer and as a network's referred customer; they meet through the shared
// customer_key or through an identity (PartnerStack provider_key = Stripe customer id).
import type { Knex } from 'knex';
import type { CustomerInput, IdentityRef } from './types.ts';
import { chunk } from '../util/chunk.ts';
import { lowerEmail } from './email.ts';
import type { Logger } from 'pino';
import { createLogger } from '../log/logger.ts';

let defaultLog: Logger | undefined;
const fallbackLog = (): Logger => (defaultLog ??= createLogger({ level: 'warn' }));

async function findByIdentities(trx: Knex, refs: IdentityRef[]): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  const bySystem = new Map<string, string[]>();
  for (const r of refs) bySystem.set(r.system, [...(bySystem.get(r.system) ?? []), r.externalId]);
  for (const [system, ids] of bySystem) {
    for (const part of chunk([...new Set(ids)], 1000)) {
      const rows = await trx('customer_identities').where({ system }).whereIn('external_id', part).select<{ external_id: string; customer_id: number }[]>('external_id', 'customer_id');
      for (const r of rows) m.set(`${system}:${r.external_id}`, r.customer_id);
    }
  }
  return m;
}

type Patch = Record<string, unknown>;

function patchOf(r: CustomerInput, email: string | null): Patch {
  const patch: Patch = { updated_at: new Date() };
  if (r.name) patch.name = r.name;
  if (r.email) {
    patch.email = r.email;
    patch.email_normalized = email;
  }
  if (r.isTest != null) patch.is_test = r.isTest;
  if (r.agencyOwnerRef) patch.agency_owner_ref = r.agencyOwnerRef;
  return patch;
}

const PATCH_CAST: Record<string, string> = { updated_at: 'timestamptz', name: 'text', email: 'text', email_normalized: 'text', is_test: 'boolean', agency_owner_ref: 'text', customer_key: 'text' };

/**
 * Returns identity.externalId → customer id for every input.
 *
 * Set-based per call: the rows are resolved in order in memory exactly as a row-by-row upsert
 * would (a key or identity taken by an earlier row of the call is seen by later ones; a new
 * customer gets a temporary handle until inserted), then written with a few statements — one
 * multi-row insert of the new customers, one UPDATE … FROM (VALUES …) per set of patched columns
 * (each customer's patches merged in row order), one insert of new identities and one of emails.
 * A call whose placeholder keys (`~system:id`) already exist falls back to the row-by-row form.
 */
export async function upsertCustomers(trx: Knex, rows: CustomerInput[], log?: Logger): Promise<Map<string, number>> {
  if (rows.length === 0) return new Map();
  let loaded = await loadExisting(trx, rows);
  // Rare: a row naming two existing customers (a placeholder and the keyed customer, say). Merge
  // the placeholders first, then resolve against the merged state.
  const merges = planMerges(rows, loaded, log ?? fallbackLog());
  if (merges.size > 0) {
    await mergeCustomers(trx, merges);
    loaded = await loadExisting(trx, rows);
  }
  const out = await upsertResolved(trx, rows, loaded);
  if (out.conflict) {
    // A row met a customer this call created and an existing placeholder: merge now that both exist.
    const late = planMerges(rows, await loadExisting(trx, rows), log ?? fallbackLog());
    if (late.size > 0) {
      await mergeCustomers(trx, late);
      const survivor = (id: number): number => {
        let x = id;
        for (let n = late.get(x); n !== undefined; n = late.get(x)) x = n;
        return x;
      };
      for (const [k, v] of out.ids) out.ids.set(k, survivor(v));
    }
  }
  return out.ids;
}

interface Existing {
  byIdentity: Map<string, number>;
  byKey: Map<string, number>;
  curKey: Map<number, string>;
}

async function loadExisting(trx: Knex, rows: CustomerInput[]): Promise<Existing> {
  const allRefs = rows.flatMap((r) => [r.identity, ...(r.otherIdentities ?? [])]);
  const byIdentity = await findByIdentities(trx, allRefs);
  const keys = [...new Set(rows.map((r) => r.customerKey).filter((k): k is string => !!k))];
  const byKey = new Map<string, number>();
  for (const part of chunk(keys, 1000)) {
    const found = await trx('customers').whereIn('customer_key', part).select<{ id: number | string; customer_key: string }[]>('id', 'customer_key');
    for (const f of found) byKey.set(f.customer_key, Number(f.id));
  }
  // Current customer_key of existing customers that a row with a key may complete.
  const curKey = new Map<number, string>();
  const existingIds = [...new Set([...byIdentity.values(), ...byKey.values()])];
  for (const part of chunk(existingIds, 1000)) {
    const found = await trx('customers').whereIn('id', part).select<{ id: number | string; customer_key: string }[]>('id', 'customer_key');
    for (const f of found) curKey.set(Number(f.id), f.customer_key);
  }
  return { byIdentity, byKey, curKey };
}

const isPlaceholder = (key: string | undefined): boolean => key === undefined || key.startsWith('~');

/**
 * Which existing customers the rows show to be one: walks the rows in order as the writer does (a
 * placeholder taking a row's new key is keyed for the later rows) and, for a row naming several
 * existing customers, merges its placeholder customers (`~system:id`) into its one keyed customer,
 * or into the oldest placeholder when none is keyed. Two keyed customers are never merged (warned).
 * Returns loser id → survivor id.
 */
function planMerges(rows: CustomerInput[], ex: Existing, log: Logger): Map<number, number> {
  const merges = new Map<number, number>();
  const canon = (id: number): number => {
    let x = id;
    for (let n = merges.get(x); n !== undefined; n = merges.get(x)) x = n;
    return x;
  };
  const byKey = new Map(ex.byKey);
  const curKey = new Map(ex.curKey);
  for (const r of rows) {
    const found = [
      ex.byIdentity.get(`${r.identity.system}:${r.identity.externalId}`),
      r.customerKey ? byKey.get(r.customerKey) : undefined,
      ...(r.otherIdentities ?? []).map((o) => ex.byIdentity.get(`${o.system}:${o.externalId}`)),
    ];
    const ids = [...new Set(found.filter((x): x is number => x !== undefined).map(canon))];
    if (ids.length === 0) continue;
    let target = ids[0]!;
    if (ids.length > 1) {
      const keyed = ids.filter((id) => !isPlaceholder(curKey.get(id)));
      if (keyed.length > 1) {
        log.warn({ identity: `${r.identity.system}:${r.identity.externalId}`, customerKey: r.customerKey ?? null, customerIds: ids }, 'record names several keyed customers; not merged');
        continue;
      }
      target = keyed[0] ?? Math.min(...ids);
      for (const id of ids) if (id !== target) merges.set(id, target);
    }
    if (r.customerKey && !byKey.has(r.customerKey) && isPlaceholder(curKey.get(target))) {
      byKey.set(r.customerKey, target);
      curKey.set(target, r.customerKey);
    }
  }
  for (const [loser] of merges) merges.set(loser, canon(loser));
  return merges;
}

/** Moves everything of each loser customer to its survivor and deletes the loser (same transaction). */
async function mergeCustomers(trx: Knex, merges: Map<number, number>): Promise<void> {
  for (const [loser, survivor] of merges) {
    await trx('customer_identities').where({ customer_id: loser }).update({ customer_id: survivor });
    await trx.raw(
      'INSERT INTO customer_emails (customer_id, email_normalized) SELECT ?::bigint, email_normalized FROM customer_emails WHERE customer_id = ? ON CONFLICT (customer_id, email_normalized) DO NOTHING',
      [survivor, loser],
    );
    await trx('customer_emails').where({ customer_id: loser }).delete();
    // attributions are unique on (connection, source_ref), which a re-point leaves unchanged.
    for (const table of ['subscriptions', 'billing_events', 'attributions', 'network_commissions', 'network_transactions']) {
      await trx(table).where({ customer_id: loser }).update({ customer_id: survivor });
    }
    await trx('customers').where({ id: loser }).delete();
  }
}

async function upsertResolved(trx: Knex, rows: CustomerInput[], ex: Existing): Promise<{ ids: Map<string, number>; conflict: boolean }> {
  const byIdentity = new Map<string, number | string>(ex.byIdentity);
  const byKey = new Map<string, number | string>(ex.byKey);
  const curKey = new Map<number | string, string>(ex.curKey);
  let conflict = false;

  // New customers get handles `new:<n>` until inserted.
  const inserts: Array<{ handle: string; values: Record<string, unknown>; patch: Patch }> = [];
  const patches = new Map<number | string, Patch>();
  const identities: Array<{ customer: number | string; system: string; connection: string; external_id: string }> = [];
  const emails: Array<{ customer: number | string; email_normalized: string }> = [];
  const outRef = new Map<string, number | string>();
  for (const r of rows) {
    const named = [
      byIdentity.get(`${r.identity.system}:${r.identity.externalId}`),
      r.customerKey ? byKey.get(r.customerKey) : undefined,
      ...(r.otherIdentities ?? []).map((o) => byIdentity.get(`${o.system}:${o.externalId}`)),
    ].filter((x) => x !== undefined);
    const known = named[0];
    if (new Set(named).size > 1 && named.some((x) => typeof x === 'string')) conflict = true;
    const email = lowerEmail(r.email);
    const patch = patchOf(r, email);
    let id: number | string;
    if (known !== undefined) {
      id = known;
      if (r.customerKey) {
        const cur = curKey.get(id);
        if (cur !== undefined && cur.startsWith('~') && !byKey.has(r.customerKey)) {
          patch.customer_key = r.customerKey;
          curKey.set(id, r.customerKey);
          byKey.set(r.customerKey, id);
        }
      }
      patches.set(id, { ...patches.get(id), ...patch });
    } else {
      const customerKey = r.customerKey ?? `~${r.identity.system}:${r.identity.externalId}`;
      id = `new:${inserts.length}`;
      inserts.push({ handle: id, values: { customer_key: customerKey, name: r.name ?? null, email: r.email ?? null, email_normalized: email, is_test: r.isTest ?? false, agency_owner_ref: r.agencyOwnerRef ?? null }, patch });
      curKey.set(id, customerKey);
      byKey.set(customerKey, id);
    }
    for (const ref of [r.identity, ...(r.otherIdentities ?? [])]) {
      if (!byIdentity.has(`${ref.system}:${ref.externalId}`)) {
        identities.push({ customer: id, system: ref.system, connection: ref.connection, external_id: ref.externalId });
        byIdentity.set(`${ref.system}:${ref.externalId}`, id);
      }
    }
    if (email) emails.push({ customer: id, email_normalized: email });
    outRef.set(r.identity.externalId, id);
  }

  // A placeholder key that already exists would be merged into by the row-by-row insert; keep that path for it.
  const placeholders = inserts.map((i) => i.values.customer_key as string).filter((k) => k.startsWith('~'));
  for (const part of chunk(placeholders, 1000)) {
    const taken = await trx('customers').whereIn('customer_key', part).first('id');
    if (taken) return { ids: await upsertCustomersRowByRow(trx, rows), conflict };
  }

  const realId = new Map<string, number>();
  for (const part of chunk(inserts, 500)) {
    const ins = await trx('customers')
      .insert(part.map((i) => i.values))
      .onConflict('customer_key')
      .ignore()
      .returning<{ id: number; customer_key: string }[]>(['id', 'customer_key']);
    const byCk = new Map(ins.map((x) => [x.customer_key, x.id]));
    for (const i of part) {
      let id = byCk.get(i.values.customer_key as string);
      if (id === undefined) {
        // Taken since the check (a concurrent writer): merge as the row-by-row insert does.
        const [m] = await trx('customers')
          .insert(i.values)
          .onConflict('customer_key')
          .merge(i.patch)
          .returning<{ id: number }[]>('id');
        id = m!.id;
      }
      realId.set(i.handle, id);
    }
  }
  const resolve = (h: number | string): number => (typeof h === 'string' && h.startsWith('new:') ? realId.get(h)! : (h as number));

  // Patches grouped by their column set: one UPDATE … FROM (VALUES …) per group and chunk.
  const groups = new Map<string, Array<[number, Patch]>>();
  for (const [h, p] of patches) {
    const cols = Object.keys(p).sort().join(',');
    groups.set(cols, [...(groups.get(cols) ?? []), [resolve(h), p]]);
  }
  // Only customers whose facts differ are rewritten (updated_at alone is not a change): a re-read
  // customer list no longer costs a new row version per customer.
  for (const [colList, items] of groups) {
    const cols = colList.split(',');
    const facts = cols.filter((c) => c !== 'updated_at');
    if (facts.length === 0) continue;
    const differs = `(${facts.map((c) => `c."${c}"`).join(', ')}) IS DISTINCT FROM (${facts.map((c) => `v."${c}"`).join(', ')})`;
    for (const part of chunk(items, 500)) {
      const values = part.map(() => `(?::bigint, ${cols.map((c) => `?::${PATCH_CAST[c] ?? 'text'}`).join(', ')})`).join(', ');
      const bindings = part.flatMap(([id, p]) => [id, ...cols.map((c) => p[c] as Knex.Value)]);
      await trx.raw(`UPDATE customers AS c SET ${cols.map((c) => `"${c}" = v."${c}"`).join(', ')} FROM (VALUES ${values}) AS v(id, ${cols.map((c) => `"${c}"`).join(', ')}) WHERE c.id = v.id AND ${differs}`, bindings);
    }
  }
  for (const part of chunk(identities, 500)) {
    await trx('customer_identities')
      .insert(part.map((i) => ({ customer_id: resolve(i.customer), system: i.system, connection: i.connection, external_id: i.external_id })))
      .onConflict(['connection', 'external_id'])
      .ignore();
  }
  for (const part of chunk(emails, 500)) {
    await trx('customer_emails')
      .insert(part.map((e) => ({ customer_id: resolve(e.customer), email_normalized: e.email_normalized })))
      .onConflict(['customer_id', 'email_normalized'])
      .ignore();
  }
  const out = new Map<string, number>();
  for (const [k, h] of outRef) out.set(k, resolve(h));
  return { ids: out, conflict };
}

/** The row-by-row form (kept for pages whose placeholder keys already exist; see upsertCustomers). */
async function upsertCustomersRowByRow(trx: Knex, rows: CustomerInput[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (rows.length === 0) return out;
  const allRefs = rows.flatMap((r) => [r.identity, ...(r.otherIdentities ?? [])]);
  const byIdentity = await findByIdentities(trx, allRefs);
  const keys = [...new Set(rows.map((r) => r.customerKey).filter((k): k is string => !!k))];
  const byKey = new Map<string, number>();
  for (const part of chunk(keys, 1000)) {
    const found = await trx('customers').whereIn('customer_key', part).select<{ id: number; customer_key: string }[]>('id', 'customer_key');
    for (const f of found) byKey.set(f.customer_key, f.id);
  }

  for (const r of rows) {
    const known =
      byIdentity.get(`${r.identity.system}:${r.identity.externalId}`) ??
      (r.customerKey ? byKey.get(r.customerKey) : undefined) ??
      (r.otherIdentities ?? []).map((o) => byIdentity.get(`${o.system}:${o.externalId}`)).find((x) => x !== undefined);
    const email = lowerEmail(r.email);
    const patch = patchOf(r, email);
    let id: number;
    if (known !== undefined) {
      id = known;
      // A customer first seen without the shared key gets it when a later record reveals it.
      if (r.customerKey) {
        const cur = await trx('customers').where({ id }).first<{ customer_key: string }>('customer_key');
        if (cur && cur.customer_key.startsWith('~') && !byKey.has(r.customerKey)) {
          patch.customer_key = r.customerKey;
          // Later records of this page naming the same key must see it taken (else a second
          // placeholder customer would try to take it too and abort the page on the unique key).
          byKey.set(r.customerKey, id);
        }
      }
      await trx('customers').where({ id }).update(patch);
    } else {
      const customerKey = r.customerKey ?? `~${r.identity.system}:${r.identity.externalId}`;
      const [ins] = await trx('customers')
        .insert({ customer_key: customerKey, name: r.name ?? null, email: r.email ?? null, email_normalized: email, is_test: r.isTest ?? false, agency_owner_ref: r.agencyOwnerRef ?? null })
        .onConflict('customer_key')
        .merge(patch)
        .returning<{ id: number }[]>('id');
      id = ins!.id;
      byKey.set(customerKey, id);
    }
    for (const ref of [r.identity, ...(r.otherIdentities ?? [])]) {
      if (!byIdentity.has(`${ref.system}:${ref.externalId}`)) {
        await trx('customer_identities').insert({ customer_id: id, system: ref.system, connection: ref.connection, external_id: ref.externalId }).onConflict(['connection', 'external_id']).ignore();
        byIdentity.set(`${ref.system}:${ref.externalId}`, id);
      }
    }
    if (email) await trx('customer_emails').insert({ customer_id: id, email_normalized: email }).onConflict(['customer_id', 'email_normalized']).ignore();
    out.set(r.identity.externalId, id);
  }
  return out;
}

/** Looks up customers by one system's external ids (for events that reference a customer). */
export async function customerIdsFor(trx: Knex, system: string, externalIds: string[]): Promise<Map<string, number>> {
  const refs = [...new Set(externalIds.filter((x) => x))].map((externalId) => ({ system, connection: '', externalId }));
  const found = await findByIdentities(trx, refs);
  const out = new Map<string, number>();
  for (const [k, v] of found) out.set(k.slice(system.length + 1), v);
  return out;
}

/** Ensures customers exist for external ids (a payment may arrive before its customer). */
export async function ensureCustomers(trx: Knex, system: string, connection: string, externalIds: string[]): Promise<Map<string, number>> {
  const found = await customerIdsFor(trx, system, externalIds);
  const missing = [...new Set(externalIds.filter((x) => x && !found.has(x)))];
  if (missing.length > 0) {
    const created = await upsertCustomers(trx, missing.map((externalId) => ({ identity: { system, connection, externalId } })));
    for (const [k, v] of created) found.set(k, v);
  }
  return found;
}
