// The ops dashboard: a hash-routed single page over the /api endpoints. No build step, no CDN.
import { api, token, ApiError } from './api.js';
import { h, table, toast } from './dom.js';
import { groupedBarChart, tierChart } from './chart.js';
import { usd, minor, date, text } from './format.js';

const $ = (id) => document.getElementById(id);
let me = null;

// ---------------------------------------------------------------- auth

async function signIn(t) {
  token.set(t);
  try {
    me = await api('/api/me');
    return true;
  } catch (e) {
    token.clear();
    me = null;
    throw e;
  }
}

function showLogin(message = '') {
  $('login').hidden = false;
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('whoami').textContent = '';
  $('view').replaceChildren();
  $('login-error').textContent = message;
  $('token').focus();
}

function showApp() {
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('whoami').textContent = `${me.role}`;
  $('whoami').title = `token ${me.name}`;
}

const isOperator = () => me && me.role === 'operator';

// ---------------------------------------------------------------- views

function heading(title, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', {}, title), ...extra);
}

function select(name, label, options, value) {
  return h('label', { class: 'field' }, label,
    h('select', { name, 'data-testid': `filter-${name}` },
      h('option', { value: '' }, 'all'),
      options.map((o) => h('option', { value: o, selected: o === value ? true : undefined }, o))));
}

function input(name, label, value, attrs = {}) {
  return h('label', { class: 'field' }, label, h('input', { name, value: value ?? '', 'data-testid': `filter-${name}`, ...attrs }));
}

// ---------------------------------------------------------------- paging

/** Page size from the hash (?limit=, 1–1000; default 500) and the page's offset (?offset=). */
function paging(params) {
  const limit = Math.min(1000, Math.max(1, Number.parseInt(params.limit ?? '', 10) || PAGE));
  const offset = Math.max(0, Number.parseInt(params.offset ?? '', 10) || 0);
  return { limit, offset };
}
const PAGE = 500;

/** Every row of a list endpoint for a CSV export (pages of 1,000 — the API's maximum). */
async function fetchAll(path, query, pick = (d) => d.items) {
  const out = [];
  for (let offset = 0; ; offset += 1000) {
    const page = pick(await api(path, { query: { ...query, limit: 1000, offset } }));
    out.push(...page);
    if (page.length < 1000) return out;
  }
}

/** The pager for a list view: moving keeps the filters (and page size) in the hash. */
function pagerFor(view, params, data, path, query) {
  const { limit, offset } = paging(params);
  return { offset, limit, total: data.total, onPage: (o) => go(view, { ...params, offset: o || undefined }), exportAll: () => fetchAll(path, query) };
}

function formValues(form) {
  const out = {};
  for (const el of form.elements) if (el.name && el.value !== '') out[el.name] = el.value;
  return out;
}

async function overviewView(params) {
  const data = await api('/api/overview', { query: params });
  const months = [...new Set(data.items.map((r) => r.period))].sort();
  const networks = [...new Set(data.items.map((r) => r.network))].sort();
  const sum = (m, key) => data.items.filter((r) => r.period === m).reduce((a, r) => a + r[key], 0);
  const chart = groupedBarChart({
    id: 'overview-chart',
    title: `Reported vs owed vs collected per month${params.network ? ` · ${params.network}` : ' · all networks'} (USD)`,
    categories: months,
    series: [
      { key: 'reported', label: 'Reported by network', cls: 's-reported', values: months.map((m) => sum(m, 'reportedUsdMinor')) },
      { key: 'owed', label: 'Owed by program rules', cls: 's-owed', values: months.map((m) => sum(m, 'owedUsdMinor')) },
      { key: 'collected', label: 'Collected by billing', cls: 's-collected', values: months.map((m) => sum(m, 'collectedUsdMinor')) },
    ],
  });
  const form = h('form', { class: 'filters', id: 'overview-filters' },
    input('from', 'From (yyyy-mm)', params.from, { pattern: '\\d{4}-\\d{2}', placeholder: '2025-01' }),
    input('to', 'To (yyyy-mm)', params.to, { pattern: '\\d{4}-\\d{2}', placeholder: '2025-12' }),
    select('network', 'Network', networks.length ? networks : ['partnerstack', 'shareasale', 'awin'], params.network),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('overview', formValues(form)); });
  const totals = h('div', { class: 'kpis' },
    kpi('Reported', usd(data.totals.reportedUsdMinor), 'kpi-reported'),
    kpi('Owed', usd(data.totals.owedUsdMinor), 'kpi-owed'),
    kpi('Collected', usd(data.totals.collectedUsdMinor), 'kpi-collected'),
    kpi('Reported − owed', usd(data.totals.reportedUsdMinor - data.totals.owedUsdMinor), 'kpi-delta'));
  return [
    heading('Overview', h('span', { class: 'muted' }, `months in ${data.timezone}`)),
    form,
    totals,
    h('div', { class: 'card chart-card' }, chart),
    table({
      id: 'overview-table', csvName: 'overview', rows: data.items,
      columns: [
        { key: 'period', label: 'Month' },
        { key: 'network', label: 'Network' },
        { key: 'reportedUsdMinor', label: 'Reported', format: usd, class: 'num' },
        { key: 'owedUsdMinor', label: 'Owed', format: usd, class: 'num' },
        { key: 'collectedUsdMinor', label: 'Collected', format: usd, class: 'num' },
        { key: 'deltaUsdMinor', label: 'Reported − owed', format: usd, class: 'num' },
      ],
    }),
  ];
}

function kpi(label, value, id) {
  return h('div', { class: 'kpi', id }, h('div', { class: 'kpi-label' }, label), h('div', { class: 'kpi-value' }, value));
}

const STATUSES = ['open', 'approved', 'resolved', 'ignored'];
const SEVERITIES = ['info', 'low', 'medium', 'high', 'critical'];

async function discrepanciesView(params) {
  const filters = { status: params.status ?? 'open', kind: params.kind, network: params.network, period: params.period, severity: params.severity };
  if (filters.status === 'all') delete filters.status;
  const data = await api('/api/discrepancies', { query: { ...filters, ...paging(params) } });
  const form = h('form', { class: 'filters', id: 'discrepancy-filters' },
    h('label', { class: 'field' }, 'Status', h('select', { name: 'status', 'data-testid': 'filter-status' },
      ['all', ...STATUSES].map((o) => h('option', { value: o, selected: o === (params.status ?? 'open') ? true : undefined }, o)))),
    select('kind', 'Kind', data.facets.kinds, params.kind),
    select('network', 'Network', data.facets.networks, params.network),
    select('period', 'Month', data.facets.periods, params.period),
    select('severity', 'Severity', SEVERITIES, params.severity),
    h('button', { type: 'submit', 'data-testid': 'apply-filters' }, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('discrepancies', { ...formValues(form), limit: params.limit }); });
  for (const sel of form.querySelectorAll('select')) sel.addEventListener('change', () => form.requestSubmit());
  return [
    heading('Discrepancies', h('span', { class: 'muted', id: 'discrepancy-total' }, `${data.total} matching`)),
    form,
    table({
      id: 'discrepancies-table', csvName: 'discrepancies', rows: data.items, pager: pagerFor('discrepancies', params, data, '/api/discrepancies', filters),
      onRowClick: (r) => { location.hash = `#/discrepancies/${r.id}`; },
      columns: [
        { key: 'id', label: '#' },
        { key: 'kind', label: 'Kind' },
        { key: 'severity', label: 'Severity', format: (v) => h('span', { class: `sev sev-${v}` }, v) },
        { key: 'status', label: 'Status', format: (v) => h('span', { class: `status st-${v}` }, v) },
        { key: 'network', label: 'Network' },
        { key: 'period', label: 'Month' },
        { key: 'partnerName', label: 'Partner', format: (v, r) => v ?? r.partnerKey ?? '' },
        { key: 'expectedMinor', label: 'Owed', format: (v, r) => minor(v, r.currency ?? 'USD'), class: 'num' },
        { key: 'reportedMinor', label: 'Reported', format: (v, r) => minor(v, r.currency ?? 'USD'), class: 'num' },
        { key: 'usdAtStakeMinor', label: 'USD at stake', format: usd, class: 'num' },
        { key: 'reason', label: 'Reason' },
      ],
    }),
  ];
}

function kv(obj, keys) {
  if (!obj) return h('p', { class: 'muted' }, 'none');
  const dl = h('dl', { class: 'kv' });
  for (const k of keys ?? Object.keys(obj)) {
    let v = obj[k];
    if (v === undefined) continue;
    if (/_minor$|Minor$/.test(k) && v !== null) v = `${minor(v, obj.currency ?? obj.base_currency ?? obj.baseCurrency ?? 'USD')} (${v})`;
    else if (/_at$|At$/.test(k)) v = date(v);
    dl.append(h('dt', {}, k), h('dd', {}, text(v)));
  }
  return dl;
}

async function discrepancyDetailView(id) {
  const d = await api(`/api/discrepancies/${encodeURIComponent(id)}`);
  const x = d.discrepancy;
  const actions = h('div', { class: 'actions', id: 'decision' });
  if (isOperator() && (x.status === 'open' || x.status === 'approved')) {
    const reason = h('input', { id: 'decision-reason', name: 'reason', placeholder: 'reason (required to ignore)', maxlength: '1000' });
    const approve = h('button', { type: 'button', id: 'approve', disabled: x.status === 'approved' ? true : undefined }, 'Approve for push-back');
    const ignore = h('button', { type: 'button', id: 'ignore', class: 'danger' }, 'Ignore');
    approve.addEventListener('click', () => decide(x.id, 'approve', reason.value));
    ignore.addEventListener('click', () => decide(x.id, 'ignore', reason.value));
    actions.append(reason, approve, ignore);
  } else if (!isOperator()) {
    actions.append(h('span', { class: 'muted' }, 'Approve / ignore needs an operator token.'));
  }
  const billingRows = d.billing;
  return [
    heading(`Discrepancy #${x.id}`, h('a', { href: '#/discrepancies' }, '← all discrepancies')),
    h('div', { class: 'card summary' },
      h('span', { class: `sev sev-${x.severity}` }, x.severity), ' ',
      h('strong', {}, x.kind), ' · ', h('span', { class: `status st-${x.status}`, id: 'detail-status' }, x.status),
      ' · ', `${x.network ?? ''} ${x.period ?? ''}`, ' · USD at stake ', h('strong', {}, usd(x.usdAtStakeMinor)),
      x.partnerId ? h('span', {}, ' · partner ', h('a', { href: `#/partners/${x.partnerId}` }, x.partnerName ?? x.partnerKey ?? `#${x.partnerId}`)) : null,
      x.reason ? h('p', {}, `Reason: ${x.reason}`) : null,
      x.decidedBy ? h('p', { class: 'muted' }, `Decided by ${x.decidedBy} at ${date(x.decidedAt)}`) : null,
      actions),
    h('div', { class: 'side-by-side' },
      h('section', { class: 'card', id: 'billing-facts' }, h('h2', {}, 'Billing facts'),
        billingRows.length ? billingRows.map((b) => h('div', { class: 'fact' }, h('h3', {}, `${b.kind} ${b.external_id}`), kv(b, ['connection', 'occurred_at', 'amount_minor', 'gross_minor', 'tax_minor', 'currency', 'amount_usd_minor', 'exchange_rate', 'fx_source', 'billing_reason', 'plan_interval', 'status', 'document_id']))) : h('p', { class: 'muted' }, 'No billing event linked.')),
      h('section', { class: 'card', id: 'network-record' }, h('h2', {}, 'Network record'),
        kv(d.network, d.network ? ['connection', 'network', 'external_id', 'status', 'raw_status', 'amount_minor', 'currency', 'amount_usd_minor', 'sale_amount_minor', 'occurred_at', 'transaction_key', 'order_ref', 'partner_external_id', 'customer_external_key', 'description'] : undefined)),
      h('section', { class: 'card', id: 'rule-explanation' }, h('h2', {}, 'Rule explanation'),
        d.computed ? [kv(d.computed, ['commissionKey', 'kind', 'tier', 'rate', 'baseMinor', 'amountMinor', 'amountUsdMinor', 'status', 'paidAt', 'payoutDate', 'ruleVersion', 'exclusionReason']),
          h('pre', { class: 'explain' }, d.explanationLines.join('\n'))] : h('p', { class: 'muted' }, 'No computed commission linked.'))),
    h('section', {}, h('h2', {}, 'Detail'), h('pre', { class: 'explain' }, JSON.stringify(x.detail ?? {}, null, 2))),
    h('section', {}, h('h2', {}, 'Corrections'), table({
      id: 'discrepancy-corrections', csvName: `discrepancy-${x.id}-corrections`, rows: d.corrections,
      columns: [{ key: 'id', label: '#' }, { key: 'action_type', label: 'Action' }, { key: 'status', label: 'Status' }, { key: 'usd_minor', label: 'USD', format: usd, class: 'num' }, { key: 'error', label: 'Error' }],
    })),
  ];
}

async function decide(id, action, reason) {
  try {
    const body = reason ? { reason } : {};
    if (action === 'ignore' && !reason) {
      toast('Give a reason to ignore a discrepancy.', 'error');
      $('decision-reason').focus();
      return;
    }
    await api(`/api/discrepancies/${id}/${action}`, { method: 'POST', body });
    toast(`Discrepancy #${id} ${action === 'approve' ? 'approved' : 'ignored'}.`, 'ok');
    await render();
  } catch (e) {
    toast(e.message, 'error');
  }
}

async function partnersView(params) {
  const data = await api('/api/partners', { query: { q: params.q, ...paging(params) } });
  const form = h('form', { class: 'filters' }, input('q', 'Search', params.q, { placeholder: 'name, email or key' }), h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('partners', { ...formValues(form), limit: params.limit }); });
  return [
    heading('Partners'),
    form,
    table({
      id: 'partners-table', csvName: 'partners', rows: data.items, pager: pagerFor('partners', params, data, '/api/partners', { q: params.q }), onRowClick: (r) => { location.hash = `#/partners/${r.id}`; },
      columns: [
        { key: 'id', label: '#' }, { key: 'name', label: 'Name' }, { key: 'email', label: 'Email' }, { key: 'networks', label: 'Networks', format: (v) => v.join(', ') },
        { key: 'reportedUsdMinor', label: 'Reported', format: usd, class: 'num' }, { key: 'owedUsdMinor', label: 'Owed', format: usd, class: 'num' },
        { key: 'openDiscrepancies', label: 'Open discrepancies', class: 'num' },
      ],
    }),
  ];
}

async function partnerView(id) {
  const d = await api(`/api/partners/${encodeURIComponent(id)}`);
  const p = d.partner;
  const levels = [...new Set(d.tierHistory.map((t) => t.tier))].sort();
  return [
    heading(p.name ?? p.partnerKey, h('a', { href: '#/partners' }, '← all partners')),
    h('div', { class: 'card' }, kv(p, ['partnerKey', 'email', 'taxInfoOnFile', 'payoutMethodOnFile', 'createdAt'])),
    h('section', {}, h('h2', {}, 'Tier over time'),
      d.tierHistory.length ? h('div', { class: 'card chart-card' }, tierChart({ id: 'tier-chart', months: d.tierHistory.map((t) => t.month), tiers: d.tierHistory.map((t) => t.tier), levels })) : h('p', { class: 'muted' }, 'No tiered commissions yet.'),
      table({ id: 'tier-table', csvName: `partner-${p.id}-tiers`, rows: d.tierHistory, columns: [{ key: 'month', label: 'Month' }, { key: 'tier', label: 'Tier' }] })),
    h('section', {}, h('h2', {}, 'Accounts'), table({
      id: 'accounts-table', csvName: `partner-${p.id}-accounts`, rows: d.accounts,
      columns: [{ key: 'connection', label: 'Connection' }, { key: 'network', label: 'Network' }, { key: 'external_id', label: 'External id' }, { key: 'status', label: 'Status' }, { key: 'joined_at', label: 'Joined', format: date }],
    })),
    h('section', {}, h('h2', {}, 'Commissions'), table({
      id: 'commissions-table', csvName: `partner-${p.id}-commissions`, rows: d.commissions,
      columns: [
        { key: 'paidAt', label: 'Paid', format: date }, { key: 'kind', label: 'Kind' }, { key: 'network', label: 'Network' }, { key: 'tier', label: 'Tier' }, { key: 'rate', label: 'Rate' },
        { key: 'baseMinor', label: 'Base', format: (v, r) => minor(v, r.baseCurrency), class: 'num' }, { key: 'amountUsdMinor', label: 'Amount (USD)', format: usd, class: 'num' },
        { key: 'status', label: 'Status' }, { key: 'payoutDate', label: 'Payout' }, { key: 'exclusionReason', label: 'Excluded' },
      ],
    })),
    h('section', {}, h('h2', {}, 'Payouts'), table({
      id: 'payouts-table', csvName: `partner-${p.id}-payouts`, rows: d.payouts,
      columns: [
        { key: 'payoutDate', label: 'Date' }, { key: 'network', label: 'Network' }, { key: 'balanceUsdMinor', label: 'Balance', format: usd, class: 'num' },
        { key: 'carriedInUsdMinor', label: 'Carried in', format: usd, class: 'num' }, { key: 'payableUsdMinor', label: 'Payable', format: usd, class: 'num' },
        { key: 'carriedOutUsdMinor', label: 'Carried out', format: usd, class: 'num' }, { key: 'status', label: 'Status' }, { key: 'blockedReason', label: 'Blocked' },
      ],
    })),
  ];
}

async function correctionsView(params) {
  const [data, plan] = await Promise.all([api('/api/corrections', { query: { status: params.status, ...paging(params) } }), api('/api/push/plan').catch((e) => ({ error: e.message }))]);
  const actions = plan.plan?.actions ?? [];
  const planRows = actions.map((a) => ({ discrepancyId: a.discrepancyId, kind: a.discrepancyKind, connection: a.connection, network: a.network, type: a.type, usdMinor: a.usdMinor, idempotencyKey: a.idempotencyKey }));
  const form = h('form', { class: 'filters' }, select('status', 'Status', ['planned', 'sending', 'sent', 'confirmed', 'failed', 'skipped'], params.status), h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (e) => { e.preventDefault(); go('corrections', { ...formValues(form), limit: params.limit }); });
  const pushNow = isOperator()
    ? h('div', { class: 'actions' }, h('button', { type: 'button', id: 'push-now', onclick: () => trigger('/api/trigger/push', {}) }, 'Push approved corrections now'), h('span', { class: 'muted' }, 'Per-run caps apply; every action is idempotent.'))
    : null;
  return [
    heading('Corrections'),
    h('h2', {}, 'Next push (dry run)'),
    plan.error ? h('p', { class: 'error' }, plan.error) : table({
      id: 'push-plan-table', csvName: 'push-plan', rows: planRows, empty: 'Nothing approved to push.',
      columns: [{ key: 'discrepancyId', label: 'Discrepancy', format: (v) => h('a', { href: `#/discrepancies/${v}` }, `#${v}`) }, { key: 'kind', label: 'Kind' }, { key: 'connection', label: 'Connection' }, { key: 'network', label: 'Network' }, { key: 'type', label: 'Action' }, { key: 'usdMinor', label: 'USD', format: usd, class: 'num' }, { key: 'idempotencyKey', label: 'Idempotency key' }],
    }),
    pushNow,
    h('h2', {}, 'Sent and pending'),
    form,
    table({
      id: 'corrections-table', csvName: 'corrections', rows: data.items, pager: pagerFor('corrections', params, data, '/api/corrections', { status: params.status }),
      columns: [
        { key: 'id', label: '#' }, { key: 'discrepancyId', label: 'Discrepancy', format: (v) => (v ? h('a', { href: `#/discrepancies/${v}` }, `#${v}`) : '') },
        { key: 'network', label: 'Network' }, { key: 'actionType', label: 'Action' }, { key: 'usdMinor', label: 'USD', format: usd, class: 'num' },
        { key: 'status', label: 'Status' }, { key: 'attempts', label: 'Attempts', class: 'num' }, { key: 'createdAt', label: 'Created', format: date }, { key: 'error', label: 'Error' },
      ],
    }),
  ];
}

async function syncView() {
  const [status, runs, jobs] = await Promise.all([api('/api/connections'), api('/api/runs', { query: { limit: 100 } }), api('/api/jobs', { query: { limit: 50 } })]);
  const conns = status.connections.map((c) => ({
    name: c.name, type: c.type, enabled: c.enabled, schedule: c.schedule ?? '', lastStatus: c.lastRun?.status ?? 'never',
    lastRunAt: c.lastRun?.finishedAt ?? c.lastRun?.startedAt ?? '', lastSuccessAt: c.lastSuccessAt ?? '', lastError: c.lastRun?.error ?? '', quarantined: c.quarantined,
  }));
  const triggers = isOperator()
    ? h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'trigger-main', onclick: () => trigger('/api/trigger/main-job', {}) }, 'Run main job now'),
        ...status.connections.filter((c) => c.enabled).map((c) => h('button', { type: 'button', class: 'secondary', onclick: () => trigger('/api/trigger/sync', { connection: c.name }) }, `Sync ${c.name}`)))
    : null;
  return [
    heading('Sync status'),
    triggers,
    table({
      id: 'connections-table', csvName: 'connections', rows: conns,
      columns: [
        { key: 'name', label: 'Connection' }, { key: 'type', label: 'Type' }, { key: 'enabled', label: 'Enabled' }, { key: 'schedule', label: 'Schedule' },
        { key: 'lastStatus', label: 'Last run', format: (v) => h('span', { class: `status st-${v}` }, v) }, { key: 'lastRunAt', label: 'At', format: date },
        { key: 'lastSuccessAt', label: 'Last success', format: date }, { key: 'lastError', label: 'Last error', class: 'error-cell' }, { key: 'quarantined', label: 'Quarantined', class: 'num' },
      ],
    }),
    h('h2', {}, 'Recent runs'),
    table({
      id: 'runs-table', csvName: 'sync-runs', rows: runs.items,
      columns: [
        { key: 'id', label: '#' }, { key: 'connection', label: 'Connection' }, { key: 'status', label: 'Status', format: (v) => h('span', { class: `status st-${v}` }, v) },
        { key: 'startedAt', label: 'Started', format: date }, { key: 'finishedAt', label: 'Finished', format: date }, { key: 'error', label: 'Error', class: 'error-cell' },
      ],
    }),
    h('h2', {}, 'Scheduled jobs'),
    table({
      id: 'jobs-table', csvName: 'jobs', rows: jobs.jobs,
      columns: [{ key: 'name', label: 'Job' }, { key: 'cron', label: 'Cron' }, { key: 'nextRun', label: 'Next run', format: date }, { key: 'running', label: 'Running here' }, { key: 'description', label: 'What' }],
    }),
    h('h2', {}, 'Recent fires (all replicas)'),
    table({
      id: 'fires-table', csvName: 'job-fires', rows: jobs.fires,
      columns: [{ key: 'job', label: 'Job' }, { key: 'fireAt', label: 'Fire', format: date }, { key: 'owner', label: 'Replica' }, { key: 'status', label: 'Status' }, { key: 'finishedAt', label: 'Finished', format: date }, { key: 'error', label: 'Error', class: 'error-cell' }],
    }),
    h('h2', {}, 'Checkpoints'),
    table({
      id: 'checkpoints-table', csvName: 'checkpoints', rows: status.checkpoints,
      columns: [{ key: 'connection', label: 'Connection' }, { key: 'stream', label: 'Stream' }, { key: 'state', label: 'State' }, { key: 'updatedAt', label: 'Updated', format: date }],
    }),
  ];
}

async function trigger(path, body) {
  try {
    const r = await api(path, { method: 'POST', body });
    toast(`${r.job} started`, 'ok');
  } catch (e) {
    toast(e.message, 'error');
  }
}

// ---------------------------------------------------------------- router

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter(Boolean);
  return { parts, params: Object.fromEntries(new URLSearchParams(qs ?? '')) };
}

function go(view, params = {}) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== '')).toString();
  location.hash = `#/${view}${qs ? `?${qs}` : ''}`;
}

async function render() {
  if (!token.get()) return showLogin();
  if (!me) {
    try {
      me = await api('/api/me');
    } catch (e) {
      token.clear();
      return showLogin(e instanceof ApiError ? e.message : 'sign-in failed');
    }
  }
  showApp();
  const { parts, params } = parseHash();
  const view = parts[0] ?? 'overview';
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === view);
  const target = $('view');
  target.setAttribute('aria-busy', 'true');
  try {
    let content;
    if (view === 'discrepancies' && parts[1]) content = await discrepancyDetailView(parts[1]);
    else if (view === 'discrepancies') content = await discrepanciesView(params);
    else if (view === 'partners' && parts[1]) content = await partnerView(parts[1]);
    else if (view === 'partners') content = await partnersView(params);
    else if (view === 'corrections') content = await correctionsView(params);
    else if (view === 'sync') content = await syncView();
    else content = await overviewView(params);
    target.replaceChildren(...[content].flat().filter(Boolean));
    target.dataset.view = view;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      token.clear();
      me = null;
      return showLogin(e.message);
    }
    target.replaceChildren(h('div', { class: 'card error', role: 'alert' }, `Could not load: ${e.message}`));
  } finally {
    target.removeAttribute('aria-busy');
  }
}

function init() {
  $('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = $('token').value.trim();
    if (!t) return;
    try {
      await signIn(t);
      $('token').value = '';
      if (!location.hash || location.hash === '#/') location.hash = '#/overview';
      await render();
    } catch (err) {
      showLogin(err.message);
    }
  });
  $('logout').addEventListener('click', () => {
    token.clear();
    me = null;
    showLogin();
  });
  window.addEventListener('hashchange', () => void render());
  void render();
}

init();
