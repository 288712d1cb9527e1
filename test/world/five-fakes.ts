// The five fake APIs, started once for a test file's tests and closed after them. Fields are set by
// the time a test runs (not at module evaluation), so read them as `fakes.stripe`, not destructured.
import { afterAll, beforeAll } from 'vitest';
import { startStripeFake, type StripeFake } from '../../connectors/stripe/fake-server.ts';
import { createPartnerStackFake, type PartnerStackFake } from '../../connectors/partnerstack/fake-server.ts';
import { startChargebeeFake, type ChargebeeFake } from '../../connectors/chargebee/fake-server.ts';
import { startFakeShareASale, type FakeShareASale } from '../../connectors/shareasale/fake-server.ts';
import { startFakeAwin, type FakeAwin } from '../../connectors/awin/fake-server.ts';

export interface FiveFakes {
  stripe: StripeFake;
  ps: PartnerStackFake;
  cb: ChargebeeFake;
  sas: FakeShareASale;
  awin: FakeAwin;
}

export function useFiveFakes(): FiveFakes {
  const f = {} as FiveFakes;
  beforeAll(async () => {
    [f.stripe, f.ps, f.cb, f.sas, f.awin] = await Promise.all([startStripeFake(), createPartnerStackFake(), startChargebeeFake(), startFakeShareASale({ credits: { used: 0, limit: 1_000_000 } }), startFakeAwin()]);
  });
  afterAll(async () => {
    await Promise.all([f.stripe?.close(), f.ps?.close(), f.cb?.close(), f.sas?.close(), f.awin?.close()]);
  });
  return f;
}
