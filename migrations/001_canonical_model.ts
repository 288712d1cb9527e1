// The canonical commission model. Every table has a natural unique key so every write is an upsert.
// Money: bigint minor units + char(3) currency, never floating point. Exchange rates and commission
// rates are exact numerics.
import type { Knex } from 'knex';
import { execScript } from '../src/db/sql.ts';

export const name = '001_canonical_model';

export async function up(knex: Knex): Promise<void> {
  await execScript(knex, `
    CREATE TABLE connections (
      name            text PRIMARY KEY,
      type            text NOT NULL CHECK (type IN ('partnerstack','shareasale','awin','stripe','chargebee')),
      created_at      timestamptz NOT NULL DEFAULT now(),
      updated_at      timestamptz NOT NULL DEFAULT now()
    );

    -- One person or company. partner_key is the canonical identity (configured mapping, normalized
    -- email, or network:external id when nothing better is known).
    CREATE TABLE partners (
      id                    bigserial PRIMARY KEY,
      partner_key           text NOT NULL UNIQUE,
      name                  text,
      email                 text,
      email_normalized      text,
      recruiter_partner_id  bigint REFERENCES partners(id),
      tax_info_on_file      boolean,
      payout_method_on_file boolean,
      created_at            timestamptz NOT NULL DEFAULT now(),
      updated_at            timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX partners_email_normalized_idx ON partners (email_normalized);

    -- A partner's account on one network connection.
    CREATE TABLE partner_accounts (
      id                      bigserial PRIMARY KEY,
      partner_id              bigint NOT NULL REFERENCES partners(id),
      connection              text NOT NULL,
      network                 text NOT NULL CHECK (network IN ('partnerstack','shareasale','awin')),
      external_id             text NOT NULL,
      email                   text,
      group_key               text,
      status                  text,
      recruiter_external_id   text,
      recruiter_account_id    bigint REFERENCES partner_accounts(id),
      tax_info_on_file        boolean,
      payout_method_on_file   boolean,
      joined_at               timestamptz,
      source_updated_at       timestamptz,
      deleted_at              timestamptz,
      created_at              timestamptz NOT NULL DEFAULT now(),
      updated_at              timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, external_id)
    );
    CREATE INDEX partner_accounts_partner_idx ON partner_accounts (partner_id);

    -- A referred (or billing) customer: one real customer, with identities in several systems.
    CREATE TABLE customers (
      id                          bigserial PRIMARY KEY,
      customer_key                text NOT NULL UNIQUE,
      name                        text,
      email                       text,
      email_normalized            text,
      is_test                     boolean NOT NULL DEFAULT false,
      agency_owner_ref            text,
      created_at                  timestamptz NOT NULL DEFAULT now(),
      updated_at                  timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX customers_email_normalized_idx ON customers (email_normalized);

    -- Identity of a customer in one system: stripe cus_…, chargebee id, partnerstack key, emails.
    CREATE TABLE customer_identities (
      id              bigserial PRIMARY KEY,
      customer_id     bigint NOT NULL REFERENCES customers(id),
      system          text NOT NULL,
      connection      text NOT NULL,
      external_id     text NOT NULL,
      created_at      timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, external_id)
    );
    CREATE INDEX customer_identities_customer_idx ON customer_identities (customer_id);
    CREATE INDEX customer_identities_external_idx ON customer_identities (system, external_id);

    CREATE TABLE customer_emails (
      customer_id       bigint NOT NULL REFERENCES customers(id),
      email_normalized  text NOT NULL,
      PRIMARY KEY (customer_id, email_normalized)
    );
    CREATE INDEX customer_emails_email_idx ON customer_emails (email_normalized);

    -- Which partner account a network attributes a customer to (R1: the network is authoritative).
    CREATE TABLE attributions (
      id                  bigserial PRIMARY KEY,
      customer_id         bigint NOT NULL REFERENCES customers(id),
      partner_account_id  bigint NOT NULL REFERENCES partner_accounts(id),
      connection          text NOT NULL,
      network             text NOT NULL,
      source_ref          text NOT NULL,
      click_at            timestamptz,
      signup_at           timestamptz,
      attributed_at       timestamptz,
      deleted_at          timestamptz,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, source_ref)
    );
    CREATE INDEX attributions_customer_idx ON attributions (customer_id);
    CREATE INDEX attributions_partner_account_idx ON attributions (partner_account_id);

    CREATE TABLE subscriptions (
      id                  bigserial PRIMARY KEY,
      connection          text NOT NULL,
      billing_system      text NOT NULL CHECK (billing_system IN ('stripe','chargebee')),
      external_id         text NOT NULL,
      customer_id         bigint REFERENCES customers(id),
      plan_interval       text CHECK (plan_interval IN ('month','year')),
      plan_ref            text,
      status              text NOT NULL,
      currency            char(3),
      trial_start         timestamptz,
      trial_end           timestamptz,
      started_at          timestamptz,
      canceled_at         timestamptz,
      source_updated_at   timestamptz,
      metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, external_id)
    );
    CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id);

    -- State history: one row per observed state change (trialing → active → canceled …).
    CREATE TABLE subscription_states (
      id                bigserial PRIMARY KEY,
      subscription_id   bigint NOT NULL REFERENCES subscriptions(id),
      status            text NOT NULL,
      valid_from        timestamptz NOT NULL,
      source            text NOT NULL,
      created_at        timestamptz NOT NULL DEFAULT now(),
      UNIQUE (subscription_id, valid_from, status)
    );

    -- Money facts from billing. amount_minor is the base per R3 (excl. tax, after discounts) for
    -- payments and the amount taken back for refunds/chargebacks/reversals (positive).
    CREATE TABLE billing_events (
      id                  bigserial PRIMARY KEY,
      connection          text NOT NULL,
      billing_system      text NOT NULL CHECK (billing_system IN ('stripe','chargebee')),
      kind                text NOT NULL CHECK (kind IN ('payment','refund','chargeback','reversal','dispute_opened','dispute_won','dispute_lost')),
      external_id         text NOT NULL,
      document_id         text NOT NULL,
      customer_id         bigint REFERENCES customers(id),
      subscription_id     bigint REFERENCES subscriptions(id),
      payment_event_id    bigint REFERENCES billing_events(id),
      payment_external_id text,
      occurred_at         timestamptz NOT NULL,
      amount_minor        bigint NOT NULL,
      gross_minor         bigint,
      tax_minor           bigint,
      currency            char(3) NOT NULL,
      amount_usd_minor    bigint,
      exchange_rate       numeric(24,12),
      fx_source           text CHECK (fx_source IN ('settlement','rate_table','identity')),
      settlement_minor    bigint,
      settlement_currency char(3),
      classification      text,
      billing_reason      text,
      plan_interval       text CHECK (plan_interval IN ('month','year')),
      status              text,
      metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
      deleted_at          timestamptz,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, kind, external_id)
    );
    CREATE INDEX billing_events_customer_idx ON billing_events (customer_id, occurred_at);
    CREATE INDEX billing_events_document_idx ON billing_events (document_id);
    CREATE INDEX billing_events_payment_idx ON billing_events (payment_event_id);
    CREATE INDEX billing_events_payment_ext_idx ON billing_events (connection, payment_external_id);

    -- Sales as the network recorded them (PartnerStack transactions, ShareASale/Awin sale amounts).
    CREATE TABLE network_transactions (
      id                  bigserial PRIMARY KEY,
      connection          text NOT NULL,
      network             text NOT NULL,
      external_id         text NOT NULL,
      customer_external_key text,
      customer_id         bigint REFERENCES customers(id),
      partner_account_id  bigint REFERENCES partner_accounts(id),
      amount_minor        bigint NOT NULL,
      currency            char(3) NOT NULL,
      amount_usd_minor    bigint,
      occurred_at         timestamptz NOT NULL,
      metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
      deleted_at          timestamptz,
      created_at          timestamptz NOT NULL DEFAULT now(),
      updated_at          timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, external_id)
    );

    -- Commissions as a network reported them. status is normalized; raw_status is the network's word.
    CREATE TABLE network_commissions (
      id                    bigserial PRIMARY KEY,
      connection            text NOT NULL,
      network               text NOT NULL CHECK (network IN ('partnerstack','shareasale','awin')),
      external_id           text NOT NULL,
      partner_account_id    bigint REFERENCES partner_accounts(id),
      partner_external_id   text,
      customer_id           bigint REFERENCES customers(id),
      customer_external_key text,
      transaction_key       text,
      order_ref             text,
      kind_hint             text CHECK (kind_hint IN ('direct','second_tier')),
      amount_minor          bigint NOT NULL,
      currency              char(3) NOT NULL,
      amount_usd_minor      bigint,
      sale_amount_minor     bigint,
      sale_currency         char(3),
      status                text NOT NULL CHECK (status IN ('pending','hold','approved','scheduled','paid','declined','deleted')),
      raw_status            text,
      occurred_at           timestamptz NOT NULL,
      click_at              timestamptz,
      offer_key             text,
      trigger_key           text,
      invoice_status        text,
      description           text,
      metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
      deleted_at            timestamptz,
      first_seen_at         timestamptz NOT NULL DEFAULT now(),
      last_seen_at          timestamptz NOT NULL DEFAULT now(),
      created_at            timestamptz NOT NULL DEFAULT now(),
      updated_at            timestamptz NOT NULL DEFAULT now(),
      UNIQUE (connection, external_id)
    );
    CREATE INDEX network_commissions_tx_idx ON network_commissions (transaction_key);
    CREATE INDEX network_commissions_order_idx ON network_commissions (order_ref);
    CREATE INDEX network_commissions_customer_idx ON network_commissions (customer_id, occurred_at);
    CREATE INDEX network_commissions_account_idx ON network_commissions (partner_account_id);

    CREATE TABLE network_commission_status_history (
      id                      bigserial PRIMARY KEY,
      network_commission_id   bigint NOT NULL REFERENCES network_commissions(id),
      status                  text NOT NULL,
      raw_status              text,
      observed_at             timestamptz NOT NULL,
      UNIQUE (network_commission_id, observed_at, status)
    );

    -- What the program rules compute. commission_key is the engine's deterministic natural key.
    CREATE TABLE computed_commissions (
      id                  bigserial PRIMARY KEY,
      commission_key      text NOT NULL UNIQUE,
      kind                text NOT NULL CHECK (kind IN ('direct','second_tier','clawback')),
      clawback_of         text CHECK (clawback_of IN ('direct','second_tier')),
      partner_id          bigint NOT NULL REFERENCES partners(id),
      partner_account_id  bigint REFERENCES partner_accounts(id),
      network             text,
      payment_event_id    bigint NOT NULL REFERENCES billing_events(id),
      source_event_id     bigint NOT NULL REFERENCES billing_events(id),
      tier                text,
      rate                numeric(12,8) NOT NULL,
      base_minor          bigint NOT NULL,
      base_currency       char(3) NOT NULL,
      base_usd_minor      bigint,
      amount_minor        bigint NOT NULL,
      amount_usd_minor    bigint,
      status              text NOT NULL CHECK (status IN ('reserve','due','void','paid')),
      paid_at             timestamptz NOT NULL,
      cleared_at          timestamptz,
      payout_date         date,
      rule_version        text NOT NULL,
      exclusion_reason    text,
      flags               jsonb NOT NULL DEFAULT '[]'::jsonb,
      explanation         jsonb NOT NULL,
      as_of               timestamptz NOT NULL,
      computed_at         timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX computed_commissions_partner_idx ON computed_commissions (partner_id, payout_date);
    CREATE INDEX computed_commissions_payment_idx ON computed_commissions (payment_event_id);

    CREATE TABLE payouts (
      id                    bigserial PRIMARY KEY,
      partner_id            bigint NOT NULL REFERENCES partners(id),
      network               text NOT NULL,
      payout_date           date NOT NULL,
      balance_usd_minor     bigint NOT NULL,
      carried_in_usd_minor  bigint NOT NULL DEFAULT 0,
      carried_out_usd_minor bigint NOT NULL DEFAULT 0,
      payable_usd_minor     bigint NOT NULL DEFAULT 0,
      minimum_usd_minor     bigint NOT NULL,
      status                text NOT NULL CHECK (status IN ('payable','carried_forward','blocked','paid')),
      blocked_reason        text,
      detail                jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at            timestamptz NOT NULL DEFAULT now(),
      updated_at            timestamptz NOT NULL DEFAULT now(),
      UNIQUE (partner_id, network, payout_date)
    );

    CREATE TABLE payout_items (
      payout_id         bigint NOT NULL REFERENCES payouts(id) ON DELETE CASCADE,
      commission_key    text NOT NULL,
      amount_usd_minor  bigint NOT NULL,
      PRIMARY KEY (payout_id, commission_key)
    );

    CREATE TABLE sync_runs (
      id            bigserial PRIMARY KEY,
      connection    text NOT NULL,
      kind          text NOT NULL DEFAULT 'sync',
      status        text NOT NULL CHECK (status IN ('running','succeeded','failed','stopped')),
      started_at    timestamptz NOT NULL DEFAULT now(),
      finished_at   timestamptz,
      stats         jsonb NOT NULL DEFAULT '{}'::jsonb,
      error         text
    );
    CREATE INDEX sync_runs_connection_idx ON sync_runs (connection, started_at DESC);

    -- One typed checkpoint per (connection, stream); written in the same transaction as the page it covers.
    CREATE TABLE checkpoints (
      connection    text NOT NULL,
      stream        text NOT NULL,
      state         jsonb NOT NULL,
      run_id        bigint,
      updated_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (connection, stream)
    );

    -- Every fetched record, once per distinct content (hash), for audit and re-mapping.
    CREATE TABLE raw_records (
      connection    text NOT NULL,
      stream        text NOT NULL,
      external_id   text NOT NULL,
      hash          text NOT NULL,
      payload       jsonb NOT NULL,
      run_id        bigint,
      fetched_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (connection, stream, external_id, hash)
    );

    -- Which keys a stream saw, with when they were last seen: the basis of look-back deletion.
    CREATE TABLE stream_keys (
      connection    text NOT NULL,
      stream        text NOT NULL,
      external_id   text NOT NULL,
      record_at     timestamptz,
      last_seen_at  timestamptz NOT NULL DEFAULT now(),
      deleted_at    timestamptz,
      PRIMARY KEY (connection, stream, external_id)
    );
    CREATE INDEX stream_keys_record_at_idx ON stream_keys (connection, stream, record_at);

    CREATE TABLE quarantine (
      id            bigserial PRIMARY KEY,
      connection    text NOT NULL,
      stream        text NOT NULL,
      external_id   text,
      payload_hash  text NOT NULL,
      payload       jsonb,
      error         text NOT NULL,
      location      text,
      run_id        bigint,
      occurrences   integer NOT NULL DEFAULT 1,
      first_seen_at timestamptz NOT NULL DEFAULT now(),
      last_seen_at  timestamptz NOT NULL DEFAULT now(),
      resolved_at   timestamptz,
      UNIQUE (connection, stream, payload_hash)
    );

    CREATE TABLE reconciliation_runs (
      id            bigserial PRIMARY KEY,
      period        text,
      network       text,
      status        text NOT NULL CHECK (status IN ('running','succeeded','failed')),
      started_at    timestamptz NOT NULL DEFAULT now(),
      finished_at   timestamptz,
      stats         jsonb NOT NULL DEFAULT '{}'::jsonb,
      error         text
    );

    -- A discrepancy keeps its identity across runs through its fingerprint.
    CREATE TABLE discrepancies (
      id                      bigserial PRIMARY KEY,
      fingerprint             text NOT NULL UNIQUE,
      kind                    text NOT NULL,
      severity                text NOT NULL CHECK (severity IN ('info','low','medium','high','critical')),
      network                 text,
      connection              text,
      partner_id              bigint REFERENCES partners(id),
      partner_account_id      bigint REFERENCES partner_accounts(id),
      billing_event_id        bigint REFERENCES billing_events(id),
      network_commission_id   bigint REFERENCES network_commissions(id),
      computed_commission_key text,
      period                  text,
      expected_minor          bigint,
      reported_minor          bigint,
      currency                char(3),
      usd_at_stake_minor      bigint NOT NULL DEFAULT 0,
      status                  text NOT NULL CHECK (status IN ('open','approved','resolved','ignored')),
      reason                  text,
      detail                  jsonb NOT NULL DEFAULT '{}'::jsonb,
      first_run_id            bigint REFERENCES reconciliation_runs(id),
      last_run_id             bigint REFERENCES reconciliation_runs(id),
      first_seen_at           timestamptz NOT NULL DEFAULT now(),
      last_seen_at            timestamptz NOT NULL DEFAULT now(),
      resolved_at             timestamptz,
      decided_by              text,
      decided_at              timestamptz
    );
    CREATE INDEX discrepancies_status_idx ON discrepancies (status, kind);
    CREATE INDEX discrepancies_period_idx ON discrepancies (period, network);

    -- Push-back actions. Recorded before sending (planned/sending) and after (sent/confirmed/failed).
    CREATE TABLE corrections (
      id                bigserial PRIMARY KEY,
      idempotency_key   text NOT NULL UNIQUE,
      discrepancy_id    bigint REFERENCES discrepancies(id),
      connection        text NOT NULL,
      network           text NOT NULL,
      action_type       text NOT NULL,
      payload           jsonb NOT NULL,
      justification     jsonb NOT NULL DEFAULT '{}'::jsonb,
      usd_minor         bigint NOT NULL DEFAULT 0,
      status            text NOT NULL CHECK (status IN ('planned','sending','sent','confirmed','failed','skipped')),
      attempts          integer NOT NULL DEFAULT 0,
      request_summary   jsonb,
      response_summary  jsonb,
      error             text,
      run_id            bigint,
      created_at        timestamptz NOT NULL DEFAULT now(),
      sent_at           timestamptz,
      confirmed_at      timestamptz,
      updated_at        timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX corrections_status_idx ON corrections (status);

    CREATE TABLE alerts (
      id            bigserial PRIMARY KEY,
      dedupe_key    text NOT NULL UNIQUE,
      trigger       text NOT NULL,
      sink          text NOT NULL,
      subject       text NOT NULL,
      payload       jsonb NOT NULL,
      status        text NOT NULL CHECK (status IN ('pending','sent','failed')),
      attempts      integer NOT NULL DEFAULT 0,
      error         text,
      created_at    timestamptz NOT NULL DEFAULT now(),
      sent_at       timestamptz
    );

    -- Webhook deliveries: stored first, processed after, deduplicated on the provider's event id.
    CREATE TABLE webhook_events (
      id            bigserial PRIMARY KEY,
      source        text NOT NULL,
      connection    text NOT NULL,
      event_id      text NOT NULL,
      event_type    text NOT NULL,
      payload       jsonb NOT NULL,
      status        text NOT NULL CHECK (status IN ('received','processed','failed')),
      error         text,
      received_at   timestamptz NOT NULL DEFAULT now(),
      processed_at  timestamptz,
      UNIQUE (connection, event_id)
    );

    -- Metered API budgets (ShareASale monthly credits).
    CREATE TABLE api_usage (
      connection    text NOT NULL,
      period        text NOT NULL,
      used          integer NOT NULL DEFAULT 0,
      quota         integer,
      updated_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (connection, period)
    );

    -- Configured FX table (R3 fallback when a payment has no settlement rate): USD per unit.
    CREATE TABLE fx_rates (
      currency      char(3) NOT NULL,
      rate_date     date NOT NULL,
      usd_per_unit  numeric(24,12) NOT NULL,
      source        text NOT NULL DEFAULT 'config',
      PRIMARY KEY (currency, rate_date)
    );

    -- Identity map across networks (ShareASale ids → Awin ids, recruiter CSVs …).
    CREATE TABLE identity_links (
      kind          text NOT NULL,
      from_ref      text NOT NULL,
      to_ref        text NOT NULL,
      source        text NOT NULL DEFAULT 'config',
      created_at    timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (kind, from_ref)
    );

    -- Scheduler coordination across replicas: one row per (job, fire time); the insert decides who runs.
    CREATE TABLE job_fires (
      job_name      text NOT NULL,
      fire_at       timestamptz NOT NULL,
      owner         text NOT NULL,
      status        text NOT NULL CHECK (status IN ('running','succeeded','failed','skipped')),
      started_at    timestamptz NOT NULL DEFAULT now(),
      heartbeat_at  timestamptz NOT NULL DEFAULT now(),
      finished_at   timestamptz,
      error         text,
      PRIMARY KEY (job_name, fire_at)
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await execScript(knex, `
    DROP TABLE IF EXISTS job_fires, identity_links, fx_rates, api_usage, webhook_events, alerts,
      corrections, discrepancies, reconciliation_runs, quarantine, stream_keys, raw_records,
      checkpoints, sync_runs, payout_items, payouts, computed_commissions,
      network_commission_status_history, network_commissions, network_transactions, billing_events,
      subscription_states, subscriptions, attributions, customer_emails, customer_identities,
      customers, partner_accounts, partners, connections CASCADE;
  `);
}
