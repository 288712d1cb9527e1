// ShareASale merchant API connector (legacy reads + void/edit push) and CSV history importer.
import type { Connector } from '../../src/sync/types.ts';
import { parseShareasaleOptions } from './schemas.ts';
import { transactionDetailStream } from './streams.ts';
import { pushShareASale } from './push.ts';

export const connector: Connector = {
  type: 'shareasale',
  requiredCredentials: ['token', 'secret'],
  validateOptions: (connection) => {
    parseShareasaleOptions(connection);
  },
  streams: (ctx) => [transactionDetailStream(ctx)],
  push: (ctx, action) => pushShareASale(ctx, action),
};

export { importShareASaleCsv } from './csv-import.ts';
