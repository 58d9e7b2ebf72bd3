/**
 * Discovery: <base>/.well-known/smart-configuration (SMART App Launch 2.x),
 * <base>/.well-known/openid-configuration, the SMART style document, and the
 * CapabilityStatement's security section (SMART-on-FHIR service + OAuth URIs extension).
 */
import type { CapabilityStatement } from '@medplum/fhirtypes';
import type { Endpoints } from './oauth';

const CAPABILITIES = [
  'launch-ehr',
  'launch-standalone',
  'authorize-post',
  'client-public',
  'client-confidential-symmetric',
  'client-confidential-asymmetric',
  'context-passthrough-banner',
  'context-passthrough-style',
  'context-ehr-patient',
  'context-ehr-encounter',
  'context-standalone-patient',
  'sso-openid-connect',
  'permission-offline',
  'permission-online',
  'permission-patient',
  'permission-user',
  'permission-v1',
  'permission-v2',
];

const SCOPES = [
  'openid', 'fhirUser', 'profile', 'launch', 'launch/patient', 'offline_access', 'online_access',
  'patient/*.cruds', 'user/*.cruds', 'system/*.cruds', 'patient/*.read', 'user/*.read', 'system/*.read',
  'patient/*.write', 'user/*.write', 'system/*.write', 'patient/*.*', 'user/*.*', 'system/*.*',
];

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'];
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'];

export function smartConfiguration(urls: Endpoints): Record<string, unknown> {
  return {
    issuer: urls.issuer,
    jwks_uri: urls.jwks,
    authorization_endpoint: urls.authorize,
    grant_types_supported: GRANT_TYPES,
    token_endpoint: urls.token,
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    scopes_supported: SCOPES,
    response_types_supported: ['code'],
    introspection_endpoint: urls.introspect,
    revocation_endpoint: urls.revoke,
    userinfo_endpoint: urls.userinfo,
    capabilities: CAPABILITIES,
    code_challenge_methods_supported: ['S256'],
  };
}

export function openidConfiguration(urls: Endpoints): Record<string, unknown> {
  return {
    issuer: urls.issuer,
    authorization_endpoint: urls.authorize,
    token_endpoint: urls.token,
    userinfo_endpoint: urls.userinfo,
    jwks_uri: urls.jwks,
    introspection_endpoint: urls.introspect,
    revocation_endpoint: urls.revoke,
    scopes_supported: SCOPES,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: GRANT_TYPES,
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: AUTH_METHODS,
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'fhirUser', 'name'],
    code_challenge_methods_supported: ['S256'],
  };
}

/** The SMART style document apps may use to look like the EHR (context-passthrough-style). */
export const SMART_STYLE = {
  color_background: '#f4f6f8',
  color_error: '#b00020',
  color_highlight: '#f59e0b',
  color_modal_backdrop: 'rgba(0,0,0,0.4)',
  color_success: '#1e7e34',
  color_text: '#1b1f23',
  dim_border_radius: '8px',
  dim_font_size: '16px',
  dim_spacing_size: '16px',
  font_family_body: 'system-ui, sans-serif',
  font_family_heading: 'system-ui, sans-serif',
};

export function securityContributor(urls: Endpoints) {
  return (statement: CapabilityStatement): void => {
    const rest = statement.rest?.[0];
    if (!rest) return;
    rest.security = {
      cors: true,
      service: [
        {
          coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR', display: 'SMART-on-FHIR' }],
          text: 'OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)',
        },
      ],
      extension: [
        {
          url: 'http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris',
          extension: [
            { url: 'authorize', valueUri: urls.authorize },
            { url: 'token', valueUri: urls.token },
            { url: 'introspect', valueUri: urls.introspect },
            { url: 'revoke', valueUri: urls.revoke },
          ],
        },
      ],
      description: `SMART App Launch 2.x and Backend Services; discovery at ${urls.smartConfiguration}`,
    };
  };
}
