// Pure mapping functions for ShareASale: money and time parsing, status, canonical rows.
import { Decimal } from 'decimal.js';
import { DateTime, Info, type Zone } from 'luxon';
import type { NetworkCommissionInput, NetworkCommissionStatus } from '../../src/model/types.ts';
import { minorUnitExponent } from '../../src/rules/money.ts';
import type { SasTransaction } from './schemas.ts';

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });

/**
 * "$1,234.56", "1234.56", "-12.5", "(12.50)" → minor units of `currency`. Values with more decimals
 * than the currency has (ShareASale sometimes reports commissions to 3+ places) are rounded half away
 * from zero. Returns null for anything that is not an amount.
 */
export function parseSasMoney(text: string, currency = 'USD'): number | null {
  let t = text.trim();
  if (t === '') return null;
  let negative = false;
  if (/^\(.*\)$/.test(t)) {
    negative = true;
    t = t.slice(1, -1);
  }
  t = t.replace(/^[A-Z]{3}\s*/i, '').replace(/[$€£\s,]/g, '');
  if (t.startsWith('-')) {
    negative = !negative;
    t = t.slice(1);
  }
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(t)) return null;
  const minor = new D(t).times(new D(10).pow(minorUnitExponent(currency))).toDecimalPlaces(0, D.ROUND_HALF_UP).toNumber();
  if (!Number.isSafeInteger(minor)) return null;
  return negative && minor !== 0 ? -minor : minor;
}

/** Minor units → ShareASale's decimal text ("12.30"). */
export function minorToSasAmount(minor: number, currency = 'USD'): string {
  const exp = minorUnitExponent(currency);
  return new D(minor).dividedBy(new D(10).pow(exp)).toFixed(exp);
}

export const TIME_FORMATS = [
  'M/d/yyyy h:mm:ss a',
  'M/d/yyyy h:mm:ssa',
  'M/d/yyyy h:mm a',
  'M/d/yyyy H:mm:ss',
  'M/d/yyyy H:mm',
  'M/d/yyyy',
  'yyyy-MM-dd HH:mm:ss.SSS',
  'yyyy-MM-dd HH:mm:ss',
  "yyyy-MM-dd'T'HH:mm:ss.SSS",
  "yyyy-MM-dd'T'HH:mm:ss",
  'yyyy-MM-dd',
  'M/d/yy h:mm:ss a',
  'M/d/yy',
];

/**
 * Parses a ShareASale timestamp. They carry no zone, so wall-clock times are read in `zone`
 * (default America/Chicago, configurable); a string with an explicit offset keeps it.
 * Returns the instant and the local calendar date as mm/dd/yyyy (void/edit identify a sale by it).
 */
export function parseSasTime(text: string, zone: string): { instant: Date; localDate: string } | null {
  const t = text.trim().replace(/\s+/g, ' ');
  if (t === '') return null;
  if (/(Z|[+-]\d{2}:?\d{2})$/.test(t) && t.includes('T')) {
    const dt = DateTime.fromISO(t, { setZone: true });
    if (dt.isValid) return { instant: dt.toJSDate(), localDate: dt.setZone(zone).toFormat('MM/dd/yyyy') };
  }
  const fast = parseUsTimeFast(t, zone);
  if (fast !== undefined) return fast;
  for (const f of TIME_FORMATS) {
    const dt = DateTime.fromFormat(t, f, { zone, locale: 'en-US' });
    if (dt.isValid) return { instant: dt.toJSDate(), localDate: dt.toFormat('MM/dd/yyyy') };
  }
  return null;
}

// The report's own forms ("MM/dd/yyyy hh:mm:ss AM", "MM/dd/yyyy") without luxon's per-call format
// parsing, which was most of a ShareASale sync's CPU (up to five timestamps per row, each trying
// formats in turn). Same result as the first matching TIME_FORMATS entry: the wall clock is placed
// in the zone exactly as luxon's fromObject does (fixOffset below, starting from the zone's offset
// now), with the zone's offsets looked up once per 15-minute slot (offset changes since 1980 fall
// on such boundaries). Anything else (other forms, out-of-range fields, years outside 1980–2100)
// returns undefined and goes through luxon.
const US_TIME = /^(\d{1,2})\/(\d{1,2})\/(\d{4})(?: (\d{1,2}):(\d\d):(\d\d) ?(AM|PM))?$/i;
const SLOT_MS = 900_000;
const zones = new Map<string, Zone | null>();
const slotOffsets = new Map<string, number>();

function zoneOffset(z: Zone, ts: number): number {
  const key = `${z.name}|${Math.floor(ts / SLOT_MS)}`;
  let off = slotOffsets.get(key);
  if (off === undefined) {
    off = z.offset(Math.floor(ts / SLOT_MS) * SLOT_MS);
    if (slotOffsets.size > 200_000) slotOffsets.clear();
    slotOffsets.set(key, off);
  }
  return off;
}

/** luxon's fixOffset: the instant of wall clock `localTs` (as if UTC) in `z`, guessing offset `o` first. */
function placeInZone(localTs: number, o: number, z: Zone): [number, number] {
  let utc = localTs - o * 60_000;
  const o2 = zoneOffset(z, utc);
  if (o === o2) return [utc, o];
  utc -= (o2 - o) * 60_000;
  const o3 = zoneOffset(z, utc);
  if (o2 === o3) return [utc, o2];
  return [localTs - Math.min(o2, o3) * 60_000, Math.max(o2, o3)];
}

const pad2 = (n: number): string => (n < 10 ? `0${n}` : String(n));

export function parseUsTimeFast(t: string, zone: string): { instant: Date; localDate: string } | undefined {
  const m = US_TIME.exec(t);
  if (!m) return undefined;
  let z = zones.get(zone);
  if (z === undefined) {
    const n = Info.normalizeZone(zone);
    z = n && n.isValid ? n : null;
    zones.set(zone, z);
  }
  if (!z) return undefined;
  const month = Number(m[1]);
  const day = Number(m[2]);
  const year = Number(m[3]);
  if (year < 1980 || year > 2100 || month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
  let hour = 0;
  let minute = 0;
  let second = 0;
  if (m[4] !== undefined) {
    hour = Number(m[4]);
    minute = Number(m[5]);
    second = Number(m[6]);
    if (hour < 1 || hour > 12 || minute > 59 || second > 59) return undefined;
    const pm = m[7]!.toUpperCase() === 'PM';
    if (pm && hour < 12) hour += 12;
    else if (!pm && hour === 12) hour = 0;
  }
  const [ts, off] = placeInZone(Date.UTC(year, month - 1, day, hour, minute, second), zoneOffset(z, Date.now()), z);
  const wall = new Date(ts + off * 60_000);
  return { instant: new Date(ts), localDate: `${pad2(wall.getUTCMonth() + 1)}/${pad2(wall.getUTCDate())}/${wall.getUTCFullYear()}` };
}

/** ShareASale request dates are mm/dd/yyyy (no time). Accepts yyyy-mm-dd, mm/dd/yyyy or a Date (in `zone`). */
export function toSasDate(value: string | Date, zone = 'America/Chicago'): string {
  if (value instanceof Date) return DateTime.fromJSDate(value, { zone }).toFormat('MM/dd/yyyy');
  const iso = DateTime.fromISO(value, { zone });
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && iso.isValid) return iso.toFormat('MM/dd/yyyy');
  const us = DateTime.fromFormat(value, 'M/d/yyyy', { zone });
  if (us.isValid) return us.toFormat('MM/dd/yyyy');
  throw new Error(`"${value}" is not a date (expected yyyy-mm-dd or mm/dd/yyyy)`);
}

/** voided → declined; paid → paid; locked (after the lock date) → approved; otherwise pending. */
export function sasStatus(t: Pick<SasTransaction, 'voided' | 'locked' | 'paidDate'>): { status: NetworkCommissionStatus; raw: string } {
  if (t.voided) return { status: 'declined', raw: 'voided' };
  if (t.paidDate) return { status: 'paid', raw: 'paid' };
  if (t.locked) return { status: 'approved', raw: 'locked' };
  return { status: 'pending', raw: 'pending' };
}

export function toNetworkCommission(
  t: SasTransaction,
  ctx: { connection: string; currency: string; partnerAccountId: number | null },
): NetworkCommissionInput {
  const st = sasStatus(t);
  return {
    connection: ctx.connection,
    network: 'shareasale',
    externalId: t.transId,
    partnerAccountId: ctx.partnerAccountId,
    partnerExternalId: t.affiliateId,
    // The merchant's order number is what the billing invoice id is matched against.
    orderRef: t.orderNumber,
    transactionKey: t.orderNumber,
    kindHint: null,
    amountMinor: t.commissionMinor,
    currency: ctx.currency,
    saleAmountMinor: t.saleAmountMinor,
    saleCurrency: t.saleAmountMinor === null ? null : ctx.currency,
    status: st.status,
    rawStatus: st.raw,
    occurredAt: new Date(t.occurredAt),
    clickAt: t.clickAt ? new Date(t.clickAt) : null,
    description: t.comment,
    metadata: {
      // orderNumber + orderDate identify the sale for the void/edit push actions.
      orderNumber: t.orderNumber,
      orderDate: t.orderDate,
      transType: t.transType,
      merchantId: t.merchantId,
      lockDate: t.lockDate,
      paidDate: t.paidDate,
      voidedAt: t.voidedAt,
      referenceTrans: t.referenceTrans,
    },
  };
}
