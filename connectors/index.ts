// Connector registry: connection type → connector module, loaded on demand so a deployment only
// loads what it configures. Each connector folder has the same inner shape:
//   client.ts  schemas.ts  streams.ts  mapping.ts  push.ts  fake-server.ts  index.ts  test/
import type { ConnectionType } from '../src/config/schema.ts';
import type { Connector } from '../src/sync/types.ts';
import { UserError } from '../src/util/errors.ts';

type Loader = () => Promise<{ connector: Connector }>;

const loaders: Partial<Record<ConnectionType, Loader>> = {
  partnerstack: () => import('./partnerstack/index.ts'),
  shareasale: () => import('./shareasale/index.ts'),
  awin: () => import('./awin/index.ts'),
  stripe: () => import('./stripe/index.ts'),
  chargebee: () => import('./chargebee/index.ts'),
};

export async function loadConnector(type: ConnectionType): Promise<Connector> {
  const loader = loaders[type];
  if (!loader) throw new UserError(`No connector is available for connection type "${type}" in this build.`);
  return (await loader()).connector;
}

export function availableConnectorTypes(): ConnectionType[] {
  return Object.keys(loaders) as ConnectionType[];
}
