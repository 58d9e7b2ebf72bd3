/**
 * The access policy and authenticator used when authorization is switched off
 * (AUTH_DISABLED=true, for local experiments only): every caller may do everything.
 */
import type { AccessPolicy, Principal } from '../fhir/context';
import type { Authenticator } from '../services';

export const openAccess: AccessPolicy = {
  assertInteraction: () => undefined,
  readFilter: () => undefined,
  assertWrite: () => undefined,
};

const anonymous: Principal = { kind: 'anonymous', scopes: [] };

export const openAuthenticator: Authenticator = {
  async authenticate() {
    return { principal: anonymous, access: openAccess };
  },
};
