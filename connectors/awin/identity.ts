// ShareASale → Awin identity map. Upgraded programs got new Awin ids, so a partner's ShareASale
// history and Awin history would otherwise be two partners. Each mapping becomes an
// `identity_links` row (kind 'partner', from `shareasale:<affiliate id>` to the canonical partner key
// of the Awin publisher, `awin:<publisher id>` unless that account already has a partner), which
// upsertPartnerAccounts consults for new ShareASale accounts; ShareASale accounts that already exist
// under their own auto-created partner are moved to the Awin publisher's partner.
// Advertiser mappings (ShareASale merchant → Awin advertiser) are stored as kind 'advertiser'.
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import type { Knex } from 'knex';
import { ConfigError } from '../../src/util/errors.ts';
import { identityEntrySchema, type IdentityEntry } from './schemas.ts';

const SAS_COLS = ['shareasaleid', 'shareasale', 'sasid', 'shareasaleaffiliateid', 'shareasalemerchantid', 'oldid'];
const AWIN_COLS = ['awinid', 'awin', 'awinpublisherid', 'awinadvertiserid', 'newid'];

/** Reads `shareasale_id,awin_id[,kind]` (header names are matched loosely). */
export function readIdentityCsv(file: string, fieldPath = 'identityMapFile'): IdentityEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${fieldPath}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const rows = parse(text, { columns: (h: string[]) => h.map((x) => x.toLowerCase().replace(/[^a-z0-9]/g, '')), skip_empty_lines: true, trim: true, bom: true }) as Array<Record<string, string>>;
  return rows.map((r, i) => {
    const sas = SAS_COLS.map((c) => r[c]).find((v) => v);
    const awin = AWIN_COLS.map((c) => r[c]).find((v) => v);
    const parsed = identityEntrySchema.safeParse({ shareasaleId: sas, awinId: awin, kind: r.kind || undefined });
    if (!parsed.success) throw new ConfigError(`${fieldPath}: ${file} line ${i + 2}: expected shareasale_id,awin_id[,kind] with numeric ids and kind partner|advertiser`);
    return parsed.data;
  });
}

/** Writes the links and re-homes existing ShareASale accounts. Idempotent. Returns accounts moved. */
export async function applyIdentityMap(db: Knex, entries: IdentityEntry[], source = 'config'): Promise<{ links: number; moved: number }> {
  let moved = 0;
  await db.transaction(async (trx) => {
    for (const e of entries) {
      if (e.kind === 'advertiser') {
        await trx('identity_links').insert({ kind: 'advertiser', from_ref: `shareasale:${e.shareasaleId}`, to_ref: `awin:${e.awinId}`, source }).onConflict(['kind', 'from_ref']).merge(['to_ref', 'source']);
        continue;
      }
      const awinAccount = await trx('partner_accounts as a')
        .join('partners as p', 'p.id', 'a.partner_id')
        .where({ 'a.network': 'awin', 'a.external_id': e.awinId })
        .first<{ partner_id: number; partner_key: string } | undefined>('a.partner_id', 'p.partner_key');
      const toKey = awinAccount?.partner_key ?? `awin:${e.awinId}`;
      await trx('identity_links').insert({ kind: 'partner', from_ref: `shareasale:${e.shareasaleId}`, to_ref: toKey, source }).onConflict(['kind', 'from_ref']).merge(['to_ref', 'source']);
      const sasAccounts = await trx('partner_accounts as a')
        .join('partners as p', 'p.id', 'a.partner_id')
        .where({ 'a.network': 'shareasale', 'a.external_id': e.shareasaleId })
        .select<{ id: number; partner_id: number; partner_key: string }[]>('a.id', 'a.partner_id', 'p.partner_key');
      const toMove = sasAccounts.filter((a) => a.partner_key !== toKey);
      if (toMove.length === 0) continue;
      let targetId = awinAccount?.partner_id;
      if (targetId === undefined) {
        const [p] = await trx('partners').insert({ partner_key: toKey }).onConflict('partner_key').merge({ updated_at: trx.fn.now() }).returning<{ id: number }[]>('id');
        targetId = p!.id;
      }
      await trx('partner_accounts').whereIn('id', toMove.map((a) => a.id)).update({ partner_id: targetId, updated_at: new Date() });
      moved += toMove.length;
    }
  });
  return { links: entries.length, moved };
}
