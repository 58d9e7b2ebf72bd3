/**
 * The keys module: the server's persistent signing keys (services.keys) and their public
 * half as a JSON Web Key Set at <base>/.well-known/jwks.json, which SMART clients use to verify
 * tokens and anyone can use to verify Provenance signatures.
 */
import express from 'express';
import { basePath } from '../config';
import type { ServerModule } from '../services';
import { KeyStore } from './keystore';

/** Below the FHIR base URL, so that it is served wherever the API is (also behind a proxy). */
export const JWKS_PATH = '/.well-known/jwks.json';

export const keysModule: ServerModule = {
  name: 'keys',
  install(services) {
    services.keys = new KeyStore(services.db);
    return [
      (s) => {
        const router = express.Router();
        router.get(basePath(s.config).replace(/\/$/, '') + JWKS_PATH, async (_req, res, next) => {
          try {
            const jwks = await s.keys.jwks();
            res.setHeader('Cache-Control', 'public, max-age=300');
            res.type('application/json').send(JSON.stringify(jwks));
          } catch (err) {
            next(err);
          }
        });
        return router;
      },
    ];
  },
};
