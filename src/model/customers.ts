// Upserts customers with their identities in each system. The same real customer shows up as a
// Stripe/Chargebee customer and as a network's referred customer; they meet through the shared
// customer_key or through an identity (PartnerStack provider_key = Stripe customer id).
import type { Knex } from 'knex';
import type { CustomerInput, IdentityRef } from './types.ts';
import { chunk } from '../util/chunk.ts';
import { lowerEmail } from './email.ts';

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

/** Returns identity.externalId → customer id for every input. */
export async function upsertCustomers(trx: Knex, rows: CustomerInput[]): Promise<Map<string, number>> {
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
    const patch: Record<string, unknown> = { updated_at: new Date() };
    if (r.name) patch.name = r.name;
    if (r.email) {
      patch.email = r.email;
      patch.email_normalized = email;
    }
    if (r.isTest != null) patch.is_test = r.isTest;
    if (r.agencyOwnerRef) patch.agency_owner_ref = r.agencyOwnerRef;
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
