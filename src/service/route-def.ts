// A small route registry: each ops API route is declared once with its zod schemas and role; the
// same declaration registers the fastify route (validation + auth) and produces the OpenAPI document.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { stringify } from 'csv-stringify/sync';
import type { Authenticator, Principal, Role } from './auth.ts';
import { validationError } from './errors.ts';

export interface RouteDef<Q extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> {
  method: 'GET' | 'POST';
  /** fastify path, e.g. /api/discrepancies/:id */
  url: string;
  role: Role;
  summary: string;
  tag: string;
  query?: Q;
  params?: P;
  body?: B;
  /** Successful status code (default 200). */
  status?: number;
  /** When set, `?format=csv` returns this array of the result as text/csv. */
  csvItems?: (result: unknown) => Array<Record<string, unknown>>;
  handler(input: { query: z.infer<Q>; params: z.infer<P>; body: z.infer<B>; principal: Principal; req: FastifyRequest; reply: FastifyReply }): Promise<unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = RouteDef<any, any, any>;

type NoInput = z.ZodObject<Record<string, never>>;

export function defineRoute<Q extends z.ZodType = NoInput, P extends z.ZodType = NoInput, B extends z.ZodType = NoInput>(r: RouteDef<Q, P, B>): RouteDef<Q, P, B> {
  return r;
}

function toCsv(rows: Array<Record<string, unknown>>): string {
  if (rows.length === 0) return '';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown): string => (v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
  return stringify([cols, ...rows.map((r) => cols.map((c) => cell(r[c])))]);
}

export function registerRoutes(app: FastifyInstance, routes: AnyRoute[], auth: Authenticator): void {
  for (const r of routes) {
    app.route({
      method: r.method,
      url: r.url,
      handler: async (req, reply) => {
        const principal = auth.authenticate(req, r.role);
        const parse = <S extends z.ZodType | undefined>(schema: S, value: unknown, where: 'query' | 'params' | 'body'): unknown => {
          if (!schema) return {};
          const res = schema.safeParse(value ?? {});
          if (!res.success) throw validationError(where, res.error);
          return res.data;
        };
        const query = parse(r.query, req.query, 'query');
        const params = parse(r.params, req.params, 'params');
        const body = parse(r.body, req.body, 'body');
        const result = await r.handler({ query, params, body, principal, req, reply });
        const format = (req.query as { format?: string } | undefined)?.format;
        if (format === 'csv' && r.csvItems) {
          return reply.type('text/csv; charset=utf-8').header('content-disposition', `attachment; filename="${r.url.split('/').filter((s) => s && !s.startsWith(':')).pop() ?? 'export'}.csv"`).send(toCsv(r.csvItems(result)));
        }
        return reply.status(r.status ?? 200).send(result);
      },
    });
  }
}

// ---- OpenAPI ----

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string' }, message: { type: 'string' }, details: {} },
    },
  },
};

function parametersFrom(schema: z.ZodType | undefined, where: 'query' | 'path'): unknown[] {
  if (!schema) return [];
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: s }));
}

export function openApiDocument(routes: AnyRoute[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      description: `Requires the ${r.role} role.${r.csvItems ? ' Add format=csv for a CSV export.' : ''}`,
      security: [{ bearer: [] }],
      parameters: [...parametersFrom(r.params, 'path'), ...parametersFrom(r.query, 'query')],
      responses: {
        [String(r.status ?? 200)]: { description: 'OK', content: { 'application/json': { schema: { type: 'object' } } } },
        400: { description: 'Validation error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        401: { description: 'Missing or invalid token', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        403: { description: 'Role too low', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        429: { description: 'Too many failed authentications', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
      },
    };
    if (r.body) op.requestBody = { required: true, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input', unrepresentable: 'any' }) } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'commission-sync ops API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } }, schemas: { Error: errorSchema } },
    paths: { ...paths, ...extra },
  };
}
