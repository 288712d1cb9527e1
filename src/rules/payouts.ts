// R9: payout statements per partner, network and payout date, from computed commission rows.
import { versionAt, type ProgramVersion } from './program.ts';
import type { CommissionKind, CommissionStatus, ComputedCommission, Network, Partner } from './types.ts';

export type PayoutStatus = 'payable' | 'carried_forward' | 'blocked';

export interface PayoutLine {
  key: string;
  kind: CommissionKind;
  status: CommissionStatus;
  payoutDate: string;
  amountUsdMinor: number;
}

export interface PayoutStatement {
  partnerId: string;
  network: Network | null;
  payoutDate: string;
  status: PayoutStatus;
  /** below_minimum, negative_balance, missing_tax_info, missing_payout_method, no_network_account, no_program_version */
  reasons: string[];
  minimumUsdMinor: number | null;
  /** Unpaid amounts whose payout date was an earlier payout (carried in from before). */
  carriedInUsdMinor: number;
  /** Amounts whose payout date is this one. */
  newUsdMinor: number;
  balanceUsdMinor: number;
  payableUsdMinor: number;
  /** Balance that moves to the next payout (below minimum, negative or blocked). */
  carriedOutUsdMinor: number;
  /** True when some lines are still in reserve (a statement for a future date). */
  projected: boolean;
  lines: PayoutLine[];
}

export interface PayoutStatementInput {
  commissions: readonly ComputedCommission[];
  partners: readonly Partner[];
  /** yyyy-mm-dd */
  payoutDate: string;
  /** Minimum payouts come from the version in force on the payout date. */
  programVersions: readonly ProgramVersion[];
  /**
   * Live network accounts with what each network reports (R9 is per affiliate and network: a
   * missing W-9 on PartnerStack blocks the PartnerStack payout, not the Awin one). When a partner
   * has accounts on the statement's network, their flags decide; otherwise the partner's own.
   */
  accounts?: readonly PayoutAccountFacts[];
}

export interface PayoutAccountFacts {
  partnerId: string;
  network: Network;
  taxInfoOnFile: boolean | null;
  payoutMethodOnFile: boolean | null;
}

/** Any explicit false → false; else any true → true; else null (not reported). */
function reported(values: readonly (boolean | null)[]): boolean | null {
  if (values.some((v) => v === false)) return false;
  return values.some((v) => v === true) ? true : null;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function buildPayoutStatements(input: PayoutStatementInput): PayoutStatement[] {
  const { payoutDate } = input;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(payoutDate)) throw new Error(`payout date must be yyyy-mm-dd: ${payoutDate}`);
  const version = versionAt(input.programVersions, new Date(`${payoutDate}T00:00:00Z`));
  const partners = new Map(input.partners.map((p) => [p.id, p]));
  const accountsOf = new Map<string, PayoutAccountFacts[]>();
  for (const a of input.accounts ?? []) {
    const k = `${a.partnerId}\u0000${a.network}`;
    let l = accountsOf.get(k);
    if (!l) accountsOf.set(k, (l = []));
    l.push(a);
  }

  // Not yet paid, payable by this date; 'reserve' only appears for statements of future dates.
  const groups = new Map<string, ComputedCommission[]>();
  for (const c of input.commissions) {
    if (c.status !== 'due' && c.status !== 'reserve') continue;
    if (c.payoutDate === null || c.payoutDate > payoutDate) continue;
    const k = `${c.partnerId}\u0000${c.network ?? ''}`;
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(c);
  }

  const out: PayoutStatement[] = [];
  for (const rows of groups.values()) {
    const first = rows[0]!;
    const network = first.network;
    const lines = rows
      .map((c): PayoutLine => ({ key: c.key, kind: c.kind, status: c.status, payoutDate: c.payoutDate!, amountUsdMinor: c.amountUsdMinor }))
      .sort((a, b) => cmp(a.key, b.key));
    let carriedIn = 0;
    let fresh = 0;
    for (const l of lines) {
      if (l.payoutDate < payoutDate) carriedIn += l.amountUsdMinor;
      else fresh += l.amountUsdMinor;
    }
    const balance = carriedIn + fresh;
    const minimum = version && network ? version.payout.minimumUsd[network] : null;

    const blocking: string[] = [];
    const partner = partners.get(first.partnerId);
    const onNetwork = network === null ? undefined : accountsOf.get(`${first.partnerId}\u0000${network}`);
    const taxInfo = onNetwork ? reported(onNetwork.map((a) => a.taxInfoOnFile)) : (partner?.taxInfoOnFile ?? null);
    const payoutMethod = onNetwork ? reported(onNetwork.map((a) => a.payoutMethodOnFile)) : (partner?.payoutMethodOnFile ?? null);
    // Only an explicit false blocks: null means the network does not report it (R9).
    if (taxInfo === false) blocking.push('missing_tax_info');
    if (payoutMethod === false) blocking.push('missing_payout_method');
    if (network === null) blocking.push('no_network_account');
    if (!version) blocking.push('no_program_version');

    const carry: string[] = [];
    if (balance < 0) carry.push('negative_balance');
    else if (minimum !== null && balance < minimum) carry.push('below_minimum');

    const status: PayoutStatus = blocking.length > 0 ? 'blocked' : carry.length > 0 ? 'carried_forward' : 'payable';
    out.push({
      partnerId: first.partnerId,
      network,
      payoutDate,
      status,
      reasons: [...blocking, ...carry],
      minimumUsdMinor: minimum,
      carriedInUsdMinor: carriedIn,
      newUsdMinor: fresh,
      balanceUsdMinor: balance,
      payableUsdMinor: status === 'payable' ? balance : 0,
      carriedOutUsdMinor: status === 'payable' ? 0 : balance,
      projected: lines.some((l) => l.status === 'reserve'),
      lines,
    });
  }
  return out.sort((a, b) => cmp(a.partnerId, b.partnerId) || cmp(a.network ?? '', b.network ?? ''));
}
