// One error body for every failure the service returns: { error: { code, message, details? } }.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Logger } from 'pino';
import { scrubSecrets } from '../util/secrets.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export class ApiError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly details: unknown;
  constructor(statusCode: number, code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.code = code;
    this.details = details;
  }
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: { code, message: scrubSecrets(message), ...(details === undefined ? {} : { details }) } };
}

export function validationError(where: 'query' | 'params' | 'body', err: z.ZodError): ApiError {
  const details = err.issues.map((i) => ({ in: where, path: i.path.map(String).join('.'), message: i.message, code: i.code }));
  const first = details[0];
  const message = first ? `invalid ${where}: ${first.path ? `${first.path}: ` : ''}${first.message}` : `invalid ${where}`;
  return new ApiError(400, 'validation_error', message, details);
}

const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'rate_limited',
  501: 'not_implemented',
  503: 'unavailable',
};

export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError | ApiError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof ApiError) {
      void reply.status(err.statusCode).send(errorBody(err.code, err.message, err.details));
      return;
    }
    const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) {
      log.error({ err: scrubSecrets(err.message), route: req.routeOptions.url, method: req.method }, 'request failed');
      void reply.status(status).send(errorBody('internal_error', 'internal error'));
      return;
    }
    // fastify's own 4xx (body too large, bad JSON, bad content type, rate limit …)
    void reply.status(status).send(errorBody(CODE_BY_STATUS[status] ?? 'bad_request', err.message));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
}
