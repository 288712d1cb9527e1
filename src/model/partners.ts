// Upserts partners and their network accounts. One person may hold accounts on several networks;
// the canonical partner key comes from the connector, an identity link, the e-mail, or network:id.
import type { Knex } from 'knex';
import type { Network } from '../config/schema.ts';
import type { PartnerAccountInput } from './types.ts';
import { chunk } from '../util/chunk.ts';
import { dedupeBy } from '../util/dedupe.ts';
import { lowerEmail } from './email.ts';

export interface AccountRef {
  accountId: number;
  partnerId: number;
}

async function identityLinks(trx: Knex, kind: string, refs: string[]): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const part of chunk(refs, 1000)) {
    const rows = await trx('identity_links').where({ kind }).whereIn('from_ref', part).select<{ from_ref: string; to_ref: string }[]>('from_ref', 'to_ref');
    for (const r of rows) m.set(r.from_ref, r.to_ref);
  }
  return m;
}

/** Upserts accounts (and their partners); returns externalId → ids. */
export async function upsertPartnerAccounts(trx: Knex, input: PartnerAccountInput[]): Promise<Map<string, AccountRef>> {
  const out = new Map<string, AccountRef>();
  if (input.length === 0) return out;
  // One version per account (the last one read): an earlier version with another e-mail would
  // otherwise create a partner that no account points at.
  const rows = dedupeBy(input, (r) => `${r.connection}|${r.externalId}`);
  const links = await identityLinks(trx, 'partner', rows.map((r) => `${r.network}:${r.externalId}`));
  const partnerKeyOf = (r: PartnerAccountInput): string =>
    r.partnerKey ?? links.get(`${r.network}:${r.externalId}`) ?? (lowerEmail(r.email) ? `email:${lowerEmail(r.email)}` : `${r.network}:${r.externalId}`);
  // Existing accounts keep their partner: a later e-mail change must not re-home history.
  const existing = new Map<string, AccountRef>();
  for (const part of chunk(rows, 1000)) {
    const found = await trx('partner_accounts')
      .where({ connection: part[0]!.connection })
      .whereIn('external_id', part.map((r) => r.externalId))
      .select<{ id: number; partner_id: number; external_id: string }[]>('id', 'partner_id', 'external_id');
    for (const f of found) existing.set(f.external_id, { accountId: f.id, partnerId: f.partner_id });
  }
  const partnerRows = rows
    .filter((r) => !existing.has(r.externalId))
    .map((r) => ({
      partner_key: partnerKeyOf(r),
      name: r.name ?? null,
      email: r.email ?? null,
      email_normalized: lowerEmail(r.email),
      tax_info_on_file: r.taxInfoOnFile ?? null,
      payout_method_on_file: r.payoutMethodOnFile ?? null,
    }));
  const keyToPartner = new Map<string, number>();
  for (const part of chunk(dedupeBy(partnerRows, (p) => p.partner_key), 500)) {
    const ins = await trx('partners')
      .insert(part)
      .onConflict('partner_key')
      .merge({ updated_at: trx.fn.now() })
      .returning<{ id: number; partner_key: string }[]>(['id', 'partner_key']);
    for (const p of ins) keyToPartner.set(p.partner_key, p.id);
  }
  const accountRows = rows.map((r) => {
    const ex = existing.get(r.externalId);
    const key = partnerKeyOf(r);
    return {
      partner_id: ex?.partnerId ?? keyToPartner.get(key)!,
      connection: r.connection,
      network: r.network,
      external_id: r.externalId,
      email: r.email ?? null,
      group_key: r.groupKey ?? null,
      status: r.status ?? null,
      recruiter_external_id: r.recruiterExternalId ?? null,
      tax_info_on_file: r.taxInfoOnFile ?? null,
      payout_method_on_file: r.payoutMethodOnFile ?? null,
      joined_at: r.joinedAt ?? null,
      source_updated_at: r.sourceUpdatedAt ?? null,
      deleted_at: r.deleted ? new Date() : null,
      updated_at: new Date(),
    };
  });
  for (const part of chunk(dedupeBy(accountRows, (a) => a.external_id), 500)) {
    const ins = await trx('partner_accounts')
      .insert(part)
      .onConflict(['connection', 'external_id'])
      .merge(['email', 'group_key', 'status', 'recruiter_external_id', 'tax_info_on_file', 'payout_method_on_file', 'joined_at', 'source_updated_at', 'deleted_at', 'updated_at'])
      .returning<{ id: number; partner_id: number; external_id: string }[]>(['id', 'partner_id', 'external_id']);
    for (const a of ins) out.set(a.external_id, { accountId: a.id, partnerId: a.partner_id });
  }
  // Partner-level payout facts follow the account that reports them (the last one read per
  // partner). One statement, and only partners whose facts differ get a new row version: a
  // re-synced partner list used to cost one UPDATE per account (18 s of a 100k sync).
  const patches = new Map<number, { id: number; name: string | null; tax: boolean | null; payout: boolean | null }>();
  for (const r of rows) {
    if (r.taxInfoOnFile == null && r.payoutMethodOnFile == null && !r.name) continue;
    const ref = out.get(r.externalId);
    if (!ref) continue;
    const prev = patches.get(ref.partnerId);
    patches.set(ref.partnerId, {
      id: ref.partnerId,
      name: r.name || (prev?.name ?? null),
      tax: r.taxInfoOnFile ?? prev?.tax ?? null,
      payout: r.payoutMethodOnFile ?? prev?.payout ?? null,
    });
  }
  if (patches.size > 0) await patchPartners(trx, [...patches.values()]);
  return out;
}

/** null in a patch = keep the stored value (as the per-row updates did by leaving the column out). */
async function patchPartners(trx: Knex, patches: Array<{ id: number; name: string | null; tax: boolean | null; payout: boolean | null }>): Promise<void> {
  for (const part of chunk(patches, 2000)) {
    await trx.raw(
      `UPDATE partners p SET name = coalesce(v.name, p.name), tax_info_on_file = coalesce(v.tax, p.tax_info_on_file), payout_method_on_file = coalesce(v.payout, p.payout_method_on_file)
         FROM json_to_recordset(?::json) AS v(id bigint, name text, tax boolean, payout boolean)
        WHERE p.id = v.id
          AND (p.name, p.tax_info_on_file, p.payout_method_on_file) IS DISTINCT FROM (coalesce(v.name, p.name), coalesce(v.tax, p.tax_info_on_file), coalesce(v.payout, p.payout_method_on_file))`,
      [JSON.stringify(part)],
    );
  }
}

/** Accounts referenced by commissions before the partner stream saw them get a stub row. */
export async function ensurePartnerAccounts(trx: Knex, connection: string, network: Network, externalIds: string[]): Promise<Map<string, AccountRef>> {
  const ids = [...new Set(externalIds.filter((x) => x))];
  const out = new Map<string, AccountRef>();
  for (const part of chunk(ids, 1000)) {
    const found = await trx('partner_accounts').where({ connection }).whereIn('external_id', part).select<{ id: number; partner_id: number; external_id: string }[]>('id', 'partner_id', 'external_id');
    for (const f of found) out.set(f.external_id, { accountId: f.id, partnerId: f.partner_id });
  }
  const missing = ids.filter((id) => !out.has(id));
  if (missing.length > 0) {
    const created = await upsertPartnerAccounts(trx, missing.map((externalId) => ({ connection, network, externalId })));
    for (const [k, v] of created) out.set(k, v);
  }
  return out;
}

/** Resolves recruiter external ids to accounts and partners (second tier, R6), within one connection. */
export async function linkRecruiters(trx: Knex, connection: string): Promise<void> {
  await trx.raw(
    `UPDATE partner_accounts a SET recruiter_account_id = r.id
       FROM partner_accounts r
      WHERE a.connection = ? AND r.connection = a.connection AND r.external_id = a.recruiter_external_id
        AND a.recruiter_account_id IS DISTINCT FROM r.id`,
    [connection],
  );
  await trx.raw(
    `UPDATE partners p SET recruiter_partner_id = r.partner_id, updated_at = now()
       FROM partner_accounts a JOIN partner_accounts r ON r.id = a.recruiter_account_id
      WHERE a.connection = ? AND a.partner_id = p.id AND r.partner_id <> p.id
        AND p.recruiter_partner_id IS DISTINCT FROM r.partner_id`,
    [connection],
  );
}


export type { Network };
