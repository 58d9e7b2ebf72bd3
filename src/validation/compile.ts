/**
 * A StructureDefinition's snapshot compiled once into a tree of element nodes, the shape the
 * validator walks: children by name, slices under the element they slice, types with their
 * profiles, fixed and pattern values, bindings and invariants. Element ids (not paths) decide
 * the tree, because only ids say which slice an element belongs to
 * ("Patient.identifier:resident.system").
 *
 * Compiling is the expensive part of using a profile; everything here is computed once per
 * StructureDefinition (per version, for stored ones) and then only read.
 */
import type { ElementDefinition, ElementDefinitionType, StructureDefinition } from '@medplum/fhirtypes';
import { capitalize, getElementDefinitionTypeName } from '@medplum/core';

export interface TypeRef {
  /** A FHIR type code (string, Coding, Patient, Resource, BackboneElement ...). */
  code: string;
  /** type.profile: the value must conform to one of these. */
  profiles: string[];
  /** type.targetProfile: what a Reference (or canonical) may point to. */
  targetProfiles: string[];
}

export interface Constraint {
  key: string;
  severity: 'error' | 'warning';
  human: string;
  expression?: string;
  /** The profile that declares it (source), for messages. */
  source?: string;
}

export interface Discriminator {
  type: 'value' | 'pattern' | 'exists' | 'type' | 'profile';
  path: string;
}

export interface Slicing {
  discriminators: Discriminator[];
  rules: 'open' | 'closed' | 'openAtEnd';
  ordered: boolean;
  slices: ElementNode[];
}

export interface ElementNode {
  id: string;
  path: string;
  /** The last path segment: "identifier", "value[x]". */
  name: string;
  sliceName?: string;
  min: number;
  /** Infinity for "*". */
  max: number;
  /** The JSON form is an array (the base element repeats), whatever a profile narrowed it to. */
  isArray: boolean;
  types: TypeRef[];
  /** A choice element (value[x]): JSON names it by type (valueQuantity). */
  choice: boolean;
  fixed?: unknown;
  pattern?: unknown;
  binding?: { strength: string; valueSet?: string };
  constraints: Constraint[];
  maxLength?: number;
  /** "#Questionnaire.item": children are those of the referenced element. */
  contentReference?: string;
  children: Map<string, ElementNode>;
  slicing?: Slicing;
  /** The type name FHIRPath knows the value by (PatientContact for a backbone element). */
  fhirPathType?: string;
  profile: CompiledProfile;
  /** Anything a walk derives from the node once (key index, scopes), kept with it. */
  cache: Map<string, unknown>;
}

export interface CompiledProfile {
  url: string;
  version?: string;
  name?: string;
  /** The type it constrains or defines (Patient, Extension, HumanName). */
  type: string;
  kind?: string;
  /** True for the R4 definition of a type itself (not a constraint on it). */
  isBase: boolean;
  root: ElementNode;
  byId: Map<string, ElementNode>;
  /** Fixed Extension.url of an extension definition. */
  extensionUrl?: string;
  /** Extension contexts (context.expression) of an extension definition. */
  contexts?: { type?: string; expression?: string }[];
}

const FHIR_TYPE_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type';
const BEST_PRACTICE = 'http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice';

/** FHIRPath system types that R4 snapshots use for primitive values, as FHIR type codes. */
const SYSTEM_TYPES: Record<string, string> = {
  'http://hl7.org/fhirpath/System.String': 'string',
  'http://hl7.org/fhirpath/System.Boolean': 'boolean',
  'http://hl7.org/fhirpath/System.Integer': 'integer',
  'http://hl7.org/fhirpath/System.Decimal': 'decimal',
  'http://hl7.org/fhirpath/System.Date': 'date',
  'http://hl7.org/fhirpath/System.DateTime': 'dateTime',
  'http://hl7.org/fhirpath/System.Time': 'time',
};

export class CompileError extends Error {}

function typeCode(type: ElementDefinitionType, ed: ElementDefinition): string {
  // R4 types Resource.id as a System.String; the spec's table (and every validator) says id.
  if (ed.base?.path === 'Resource.id') return 'id';
  const declared = type.extension?.find((e) => e.url === FHIR_TYPE_EXTENSION)?.valueUrl;
  if (declared) return declared;
  const code = type.code ?? '';
  return SYSTEM_TYPES[code] ?? code;
}

function cardinality(max: string | undefined): number {
  if (max === undefined || max === '*') return Infinity;
  const n = Number(max);
  return Number.isFinite(n) ? n : Infinity;
}

function prefixedValue(ed: ElementDefinition, prefix: 'fixed' | 'pattern'): unknown {
  for (const [key, value] of Object.entries(ed)) {
    if (key.startsWith(prefix) && key.length > prefix.length && /[A-Z]/.test(key[prefix.length])) return value;
  }
  return undefined;
}

/**
 * Base invariants the walker checks itself rather than through FHIRPath: ele-1 (every element
 * has a value or children: empty objects and arrays are refused as such), dom-3 (contained
 * resources are referenced; needs descendants()), txt-1 and txt-2 (narrative XHTML;
 * htmlChecks() is not implemented by the FHIRPath engine).
 */
export const SKIPPED_KEYS: ReadonlySet<string> = new Set(['ele-1', 'dom-3', 'txt-1', 'txt-2']);

function constraintsOf(ed: ElementDefinition): Constraint[] {
  return (ed.constraint ?? []).filter((c) => !SKIPPED_KEYS.has(c.key ?? '')).map((c) => {
    const bestPractice = c.extension?.some((e) => e.url === BEST_PRACTICE && e.valueBoolean === true);
    return {
      key: c.key ?? '',
      severity: c.severity === 'warning' || bestPractice ? 'warning' : 'error',
      human: c.human ?? '',
      expression: c.expression,
      source: c.source,
    };
  });
}

/** "Patient.identifier:resident.system" -> ["Patient", "identifier:resident", "system"]. */
function idSegments(id: string): string[] {
  return id.split('.');
}

function elementId(ed: ElementDefinition, index: number): string {
  if (ed.id) return ed.id;
  // Old snapshots without ids: the path, plus the slice name for a slice's own element.
  if (index === 0 || !ed.path) return ed.path ?? '';
  return ed.sliceName ? `${ed.path}:${ed.sliceName}` : ed.path;
}

function makeNode(ed: ElementDefinition, id: string, profile: CompiledProfile): ElementNode {
  const name = (ed.path ?? id).split('.').pop() as string;
  const types: TypeRef[] = (ed.type ?? []).map((t) => ({
    code: typeCode(t, ed),
    profiles: t.profile ?? [],
    targetProfiles: t.targetProfile ?? [],
  }));
  const baseMax = cardinality(ed.base?.max ?? ed.max);
  const node: ElementNode = {
    id,
    path: ed.path ?? id,
    name,
    sliceName: ed.sliceName,
    min: ed.min ?? 0,
    max: cardinality(ed.max),
    isArray: baseMax > 1,
    types,
    choice: name.endsWith('[x]'),
    fixed: prefixedValue(ed, 'fixed'),
    pattern: prefixedValue(ed, 'pattern'),
    binding: ed.binding?.strength ? { strength: ed.binding.strength, valueSet: ed.binding.valueSet } : undefined,
    constraints: constraintsOf(ed),
    maxLength: ed.maxLength,
    contentReference: ed.contentReference,
    children: new Map(),
    profile,
    cache: new Map(),
  };
  if (types.some((t) => t.code === 'BackboneElement' || t.code === 'Element') && ed.path?.includes('.')) {
    node.fhirPathType = getElementDefinitionTypeName(ed);
  }
  if (ed.slicing) {
    node.slicing = {
      discriminators: (ed.slicing.discriminator ?? []).map((d) => ({ type: d.type as Discriminator['type'], path: d.path ?? '$this' })),
      rules: (ed.slicing.rules ?? 'open') as Slicing['rules'],
      ordered: ed.slicing.ordered ?? false,
      slices: [],
    };
  }
  return node;
}

/** The capitalized type suffix of a choice element's JSON name (valueQuantity, valueString). */
export function choiceSuffix(typeCode: string): string {
  return capitalize(typeCode);
}

export function compileStructureDefinition(sd: StructureDefinition, isBase: boolean): CompiledProfile {
  const elements = sd.snapshot?.element ?? [];
  if (!elements.length) {
    throw new CompileError(`The StructureDefinition ${sd.url} has no snapshot`);
  }
  const profile = {
    url: sd.url as string,
    version: sd.version,
    name: sd.name,
    type: sd.type as string,
    kind: sd.kind,
    isBase,
    byId: new Map<string, ElementNode>(),
  } as CompiledProfile;
  elements.forEach((ed, index) => {
    const id = elementId(ed, index);
    const node = makeNode(ed, id, profile);
    if (index === 0) {
      profile.root = node;
      profile.byId.set(id, node);
      return;
    }
    const segments = idSegments(id);
    const last = segments[segments.length - 1];
    const parentId = segments.slice(0, -1).join('.');
    const colon = last.indexOf(':');
    if (colon >= 0) {
      // A slice: it belongs to the element it slices (a reslice "a/b" to the slice "a").
      const sliceName = last.slice(colon + 1);
      const slash = sliceName.lastIndexOf('/');
      const slicedId = `${parentId}.${last.slice(0, colon)}${slash >= 0 ? ':' + sliceName.slice(0, slash) : ''}`;
      const sliced = profile.byId.get(slicedId);
      if (!sliced) throw new CompileError(`${sd.url}: the slice ${id} comes before the element it slices`);
      // A choice renamed by type (value[x]:valueQuantity) may come without an explicit slicing.
      sliced.slicing ??= { discriminators: [{ type: 'type', path: '$this' }], rules: 'open', ordered: false, slices: [] };
      node.sliceName ??= sliceName;
      sliced.slicing.slices.push(node);
    } else {
      const parent = profile.byId.get(parentId);
      if (!parent) throw new CompileError(`${sd.url}: the element ${id} comes before its parent ${parentId}`);
      parent.children.set(node.name, node);
    }
    profile.byId.set(id, node);
  });
  if (!profile.root) throw new CompileError(`The StructureDefinition ${sd.url} has no root element`);
  if (sd.type === 'Extension') {
    const url = profile.root.children.get('url');
    profile.extensionUrl = typeof url?.fixed === 'string' ? url.fixed : sd.url;
    profile.contexts = (sd.context ?? []).map((c) => ({ type: c.type, expression: c.expression }));
  }
  return profile;
}

/** The node a contentReference ("#Questionnaire.item") stands for, in the same profile. */
export function referencedNode(node: ElementNode): ElementNode | undefined {
  if (!node.contentReference) return undefined;
  const target = node.contentReference.slice(node.contentReference.indexOf('#') + 1);
  return node.profile.byId.get(target) ?? [...node.profile.byId.values()].find((n) => n.path === target && !n.sliceName);
}
