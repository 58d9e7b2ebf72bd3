/**
 * Terminology: coded values against the value set their element is bound to, and codings
 * against their code system.
 *
 * - required binding, code not in the value set: error; extensible: warning; preferred and
 *   example bindings are not checked.
 * - a code of a code system this server knows completely must exist in it (error); a wrong
 *   display is a warning.
 * - what the terminology service cannot decide (SNOMED CT, LOINC, an unknown value set) is
 *   at most a warning, never an error.
 * Checked types: code, string and uri (a bare code, the value set's systems decide), Coding,
 * CodeableConcept (valid when one of its codings is), Quantity (system and code of the unit).
 */
import type { CodeableConcept, Coding, Quantity } from '@medplum/fhirtypes';
import type { CodeCheck, CodeToCheck } from '../services';
import type { ElementNode } from './compile';
import type { Walk } from './walker';

const CHECKED = new Set(['required', 'extensible']);

/** RFC 6838 media type: type "/" subtype, restricted names, optional parameters. */
const NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
const MEDIA_TYPE = new RegExp(`^${NAME}/${NAME}(\\s*;\\s*[A-Za-z0-9!#$&^_.+-]+=("[^"]*"|[A-Za-z0-9!#$&^_.+-]+))*$`);

/**
 * Value sets that are a whole grammar-based code system (every MIME type), which no list can
 * hold: a code that follows the grammar is in it (no "cannot be checked" warning on every
 * signature and attachment); one that does not is a warning.
 */
const GRAMMARS: Record<string, { system: string; what: string; test: (code: string) => boolean }> = {
  'http://hl7.org/fhir/ValueSet/mimetypes': { system: 'urn:ietf:bcp:13', what: 'a media type (BCP 13)', test: (code) => MEDIA_TYPE.test(code) },
};

const SIMPLE_FORMATS = new Set(['xml', 'json', 'ttl']);

function codingOf(value: Coding): CodeToCheck {
  return { system: value.system, code: value.code, display: value.display, version: value.version };
}

function label(code: CodeToCheck): string {
  return code.system ? `${code.system}#${code.code}` : `"${code.code}"`;
}

export async function checkBinding(walk: Walk, el: ElementNode, type: string, value: unknown, path: string): Promise<void> {
  const binding = el.binding;
  if (!binding?.valueSet) return;
  // Recorded whatever the strength: a profile may also re-bind to a preferred value set.
  walk.bound.set(path, binding.valueSet);
  if (!CHECKED.has(binding.strength)) return;
  const vs = binding.valueSet;
  const strength = binding.strength;
  const before = walk.issues.length;
  try {
    await check(walk, el, type, value, path, vs, strength);
  } finally {
    for (const i of walk.issues.slice(before)) walk.bindingIssues.add(i);
  }
}

async function check(walk: Walk, el: ElementNode, type: string, value: unknown, path: string, vs: string, strength: string): Promise<void> {
  let codes: CodeToCheck[];
  switch (type) {
    case 'code':
    case 'string':
    case 'uri':
      codes = typeof value === 'string' ? [{ code: value }] : [];
      break;
    case 'Coding':
      codes = (value as Coding).code ? [codingOf(value as Coding)] : [];
      break;
    case 'CodeableConcept':
      codes = ((value as CodeableConcept).coding ?? []).filter((c) => c?.code).map(codingOf);
      if (!codes.length) {
        if (strength === 'required') {
          walk.report('error', 'code-invalid', `${el.path}: a code from the value set ${vs} is required (required binding), but none was given`, path);
        }
        return;
      }
      break;
    case 'Quantity': {
      const q = value as Quantity;
      codes = q.code ? [{ system: q.system, code: q.code }] : [];
      break;
    }
    default:
      return;
  }
  if (!codes.length) return;
  const grammar = GRAMMARS[vs.split('|')[0]];
  if (grammar) {
    if (codes.some((c) => (c.system === undefined || c.system === grammar.system) && typeof c.code === 'string' && grammar.test(c.code))) return;
    // CapabilityStatement.format: "'xml', 'json' and 'ttl' are allowed, which describe the simple
    // encodings described in the specification" (its definition); other values are media types.
    if (el.path === 'CapabilityStatement.format' && codes.every((c) => SIMPLE_FORMATS.has(c.code as string))) return;
    // A warning even for a required binding, as before the grammar was checked: official R4
    // examples ("json" as a TestScript contentType) and much exchanged data use short names.
    walk.report('warning', 'code-invalid', `${el.path}: ${codes.map(label).join(', ')} is not ${grammar.what}, so not in the value set ${vs} (${strength} binding)`, path);
    return;
  }
  const results: CodeCheck[] = [];
  for (const code of codes) {
    const result = await walk.checker.validateCode(vs, code);
    // One code in the value set is enough (a CodeableConcept may carry translations).
    if (result.result) return;
    results.push(result);
  }
  const undecided = results.some((r) => r.unknown);
  const shown = codes.map(label).join(', ');
  if (undecided) {
    walk.report(
      'warning',
      'code-invalid',
      `${el.path}: could not check whether ${shown} is in the value set ${vs} (${strength} binding): ${results.find((r) => r.unknown)?.message ?? 'cannot be decided here'}`,
      path
    );
    return;
  }
  const severity = strength === 'required' ? 'error' : 'warning';
  walk.report(severity, 'code-invalid', `${el.path}: ${shown} is not in the value set ${vs} (${strength} binding)`, path);
}

/** A coding whose code system is known here must use one of its codes, with its display. */
export async function checkCodingInSystem(walk: Walk, value: Coding, path: string): Promise<void> {
  if (typeof value.system !== 'string' || typeof value.code !== 'string') return;
  const result = await walk.checker.validateCodeInSystem(codingOf(value));
  if (result.unknown) return;
  if (!result.result) {
    walk.report('error', 'code-invalid', result.message ?? `Unknown code ${label(codingOf(value))}`, path);
  } else if (result.message) {
    // A wrong display, a code in the wrong case, an inactive code: worth saying, not refusing.
    walk.report('warning', 'code-invalid', result.message, path);
  }
}
