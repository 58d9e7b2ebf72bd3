/**
 * The Express application: request ids, CORS, module routers (SMART endpoints), and the FHIR
 * endpoint, which turns each HTTP request into a FhirRequest, runs it through the router,
 * stores its audit records, and only then answers.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { basePath } from '../config';
import type { FhirRequest, HttpMethod, RequestContext } from '../fhir/context';
import { errors, FhirError, toFhirError } from '../fhir/outcome';
import { executeRequest } from '../fhir/router';
import { assertQueryEncoding } from '../fhir/params';
import { logger } from '../logger';
import type { ModuleRouter, Services } from '../services';
import { assertStorableJson, parseBody } from './body';
import { parsePrefer, responseMediaType, type ResponseMediaType } from './negotiation';
import { renderResponse } from './render';
import { sql } from '../store/sql';

export type { ModuleRouter as RouterFactory } from '../services';

const CORS_ALLOW_HEADERS =
  'Authorization, Content-Type, Accept, If-Match, If-None-Match, If-None-Exist, If-Modified-Since, Prefer, X-Request-Id, X-Provenance, X-Purpose-Of-Use';
const CORS_EXPOSE_HEADERS = 'Location, Content-Location, ETag, Last-Modified, X-Request-Id, WWW-Authenticate';
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']);

function queryParams(req: Request): [string, string][] {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  return q < 0 ? [] : [...new URLSearchParams(url.slice(q + 1)).entries()];
}

function lastParam(params: [string, string][], name: string): string | undefined {
  return params.filter(([k]) => k === name).pop()?.[1];
}

function header(req: Request, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function createApp(services: Services, routers: ModuleRouter[] = []): express.Express {
  const { config } = services;
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('trust proxy', process.env.TRUST_PROXY === 'true');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const requestId = header(req, 'x-request-id')?.slice(0, 100) || randomUUID();
    res.locals.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
      // The headers a browser app asks for are allowed too (X-Requested-With, Cache-Control,
      // a vendor's client id...): with no credentials by cookie and Allow-Origin *, allowing a
      // request header gives a page nothing it could not send itself from a server.
      const requested = header(req, 'access-control-request-headers')?.trim();
      res.setHeader('Access-Control-Allow-Headers', requested ? `${CORS_ALLOW_HEADERS}, ${requested}` : CORS_ALLOW_HEADERS);
      res.setHeader('Access-Control-Max-Age', '86400');
      res.status(204).end();
      return;
    }
    next();
  });

  const fhirPath = basePath(config);
  // Paths of a resource type (<base>/Patient/...) belong to the FHIR endpoint alone: resource
  // types start with a capital letter, module routers serve lower-case paths (.well-known,
  // oauth2, admin). Those requests skip the module routers' route matching.
  const typePrefix = fhirPath === '/' ? '/' : fhirPath + '/';
  const isTypePath = (path: string) => path.startsWith(typePrefix) && /[A-Z]/.test(path.charAt(typePrefix.length));
  for (const factory of routers) {
    const router = factory(services);
    app.use((req: Request, res: Response, next: NextFunction) => (isTypePath(req.path) ? next() : router(req, res, next)));
  }

  const readBody = express.raw({ type: () => true, limit: config.maxBodyBytes });
  // Most requests (reads, searches, deletes) have no body: they skip the body reader.
  const readBodyIfAny = (req: Request, res: Response, next: NextFunction) =>
    req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined ? next() : readBody(req, res, next);
  app.use(fhirPath, readBodyIfAny, (req, res) => {
    handleFhir(services, req, res).catch((err) => {
      logger.error('unhandled error', { requestId: res.locals.requestId, error: String(err), stack: (err as Error).stack });
      if (!res.headersSent) {
        sendError(res, toFhirError(err), 'application/fhir+json');
      }
    });
  });

  app.use((req: Request, res: Response) => {
    sendError(res, errors.notFound(`No such endpoint: ${req.path}. The FHIR API is at ${config.baseUrl}`), 'application/fhir+json');
  });

  // Errors raised by the body reader: size limit, aborted or badly encoded bodies.
  app.use((err: Error & { type?: string; status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    let error: FhirError;
    if (err.type === 'entity.too.large') {
      error = errors.payloadTooLarge(`The request body is larger than the limit of ${config.maxBodyBytes} bytes`);
    } else if (err.type === 'encoding.unsupported' || err.type === 'charset.unsupported') {
      error = errors.unsupportedMediaType(err.message);
    } else if (err.status && err.status < 500) {
      error = errors.badRequest(err.message);
    } else {
      logger.error('request error', { requestId: res.locals.requestId, error: err.message });
      error = toFhirError(err);
    }
    sendError(res, error, 'application/fhir+json');
  });
  return app;
}

function sendError(res: Response, error: FhirError, mediaType: ResponseMediaType): void {
  renderResponse(res, { status: error.status, resource: error.outcome, headers: error.headers }, { mediaType, pretty: false, head: false });
}

async function handleFhir(services: Services, req: Request, res: Response): Promise<void> {
  const { config } = services;
  const params = queryParams(req);
  const head = req.method === 'HEAD';
  let mediaType: ResponseMediaType = 'application/fhir+json';
  const pretty = lastParam(params, '_pretty') === 'true';
  const ctx: RequestContext = {
    requestId: res.locals.requestId as string,
    baseUrl: config.baseUrl,
    config,
    services,
    principal: { kind: 'anonymous', scopes: [] },
    access: denyAll,
    prefer: parsePrefer(header(req, 'prefer')),
    remoteAddress: req.ip,
    audit: [],
  };

  let fhirRequest: FhirRequest;
  try {
    mediaType = responseMediaType(lastParam(params, '_format'), header(req, 'accept'));
    assertQueryEncoding(req.originalUrl);
    if (!METHODS.has(req.method)) {
      throw errors.methodNotAllowed(`${req.method} is not a FHIR interaction`, [...METHODS]);
    }
    const path = req.path.replace(/^\/+/, '').replace(/\/+$/, '');
    // POST [type]/_search and POST /_search: the body can only be a form.
    const parsed = parseBody(req, req.method === 'POST' && /(^|\/)_search$/.test(path));
    fhirRequest = {
      method: req.method as HttpMethod,
      path,
      params: parsed.form ? [...params, ...parsed.form] : params,
      body: parsed.body,
      contentType: parsed.contentType,
      ifMatch: header(req, 'if-match'),
      ifNoneMatch: header(req, 'if-none-match'),
      ifNoneExist: header(req, 'if-none-exist'),
      ifModifiedSince: header(req, 'if-modified-since'),
      url: config.baseUrl + req.url,
    };
    const xProvenance = header(req, 'x-provenance');
    if (xProvenance !== undefined) {
      fhirRequest.provenance = { resource: parseProvenanceHeader(xProvenance), source: 'X-Provenance header' };
    }
    // The CapabilityStatement is public (SMART clients read it before they have a token).
    if (path !== 'metadata') {
      const { principal, access } = await services.authenticator.authenticate(req, config);
      ctx.principal = principal;
      ctx.access = access;
    }
  } catch (err) {
    const error = toFhirError(err);
    ctx.audit.push({
      // A refused credential is a security event (failed authentication), not a read.
      interaction: error.status === 401 ? 'token' : 'read',
      method: req.method,
      url: config.baseUrl + req.url,
      status: error.status,
      outcomeText: error.message,
      response: error.outcome,
    });
    await services.audit.write(ctx, ctx.audit);
    sendError(res, error, mediaType);
    return;
  }

  const response = await executeRequest(ctx, fhirRequest);
  // No access without a record: the audit trail is stored before the response leaves.
  await services.audit.write(ctx, ctx.audit);
  renderResponse(res, response, { mediaType, pretty, head });
}

/** The X-Provenance header: a Provenance resource as JSON (FHIR RESTful API, "Provenance"). */
function parseProvenanceHeader(value: string): unknown {
  let provenance: unknown;
  try {
    provenance = JSON.parse(value);
  } catch {
    throw errors.badRequest('The X-Provenance header must hold a Provenance resource as JSON');
  }
  assertStorableJson(provenance);
  return provenance;
}

/** Used before authentication has established anything: nothing is visible. */
const denyAll = {
  assertInteraction(): void {
    throw errors.forbidden('Not authenticated');
  },
  readFilter() {
    return sql`FALSE`;
  },
  assertWrite(): void {
    throw errors.forbidden('Not authenticated');
  },
};
