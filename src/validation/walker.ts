/**
 * One walk of a resource against one StructureDefinition (the base type or a profile): the
 * JSON is read property by property against the compiled element tree, so every issue is
 * found in one pass and carries the FHIRPath of the value it is about
 * (Patient.identifier[0].value, Observation.value.ofType(Quantity).unit).
 *
 * Checked here: unknown elements, JSON shape (arrays, objects, null, empty values),
 * cardinality, types and choice types, primitive formats, fixed and pattern values,
 * maxLength, slicing (slicing.ts), reference targets (references.ts), extensions against
 * their own definitions, contained and nested resources, invariants (invariants.ts) and
 * terminology bindings (bindings.ts).
 */
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { toTypedValue } from '@medplum/core';
import type { Typed } from '../fhir/fhirpath';
import { isKnownResourceType } from '../fhir/definitions';
import { issue, type IssueType } from '../fhir/outcome';
import type { CodeChecker } from '../services';
import { checkBinding, checkCodingInSystem } from './bindings';
import type { CompiledProfile, Constraint, ElementNode } from './compile';
import { evaluateInvariant, narrativeProblems, type InvariantScope } from './invariants';
import { jsonEquals, matchesPattern, describeValue } from './json';
import { isPrimitiveType, primitiveProblem } from './primitives';
import type { LookupSession, ProfileRegistry } from './profiles';
import { checkReference, uncitedContained } from './references';
import { scopeOf, type Scope } from './scope';
import { matchSlice } from './slicing';

export interface WalkOptions {
  /** Check codes against their code systems (once per resource: done in the base walk only). */
  checkCodeSystems: boolean;
}

/** A value present in the JSON: the primitive value and/or its "_name" element. */
export interface Item {
  value: unknown;
  ext?: unknown;
  index?: number;
}

/** The resource a value belongs to (for invariants' %resource and "#id" references). */
export interface Frame extends InvariantScope {
  /** The resource whose contained list "#id" references search. */
  container: Resource;
}

interface Group {
  type: string;
  key: string;
  values?: unknown;
  ext?: unknown;
}

/**
 * Deepest nesting of JSON objects walked. Real resources stay far below (a Questionnaire's
 * items a dozen levels, a Bundle's resources a few more); each level costs the walk its whole
 * path again, so thousands of nested extensions (a 1 MB body) held the event loop for seconds.
 */
export const MAX_DEPTH = 100;

export class Walk {
  readonly issues: OperationOutcomeIssue[] = [];
  /** JSON objects entered and not yet left (fork() carries it over: a side walk is deeper still). */
  private depth = 0;
  /** Value set each coded value was checked against, by expression (how a profile re-binds an element). */
  readonly bound = new Map<string, string>();
  /** The issues that came from a binding check (dropped from the base walk where a profile re-binds). */
  readonly bindingIssues = new Set<OperationOutcomeIssue>();

  constructor(
    readonly registry: ProfileRegistry,
    readonly session: LookupSession,
    readonly checker: CodeChecker,
    readonly options: WalkOptions
  ) {}

  /** A walk on the side (does a value conform to a profile?) whose issues stay its own. */
  fork(): Walk {
    const side = new Walk(this.registry, this.session, this.checker, { checkCodeSystems: false });
    side.depth = this.depth;
    return side;
  }

  report(severity: OperationOutcomeIssue['severity'], code: IssueType, diagnostics: string, expression: string): void {
    this.issues.push(issue(severity, code, diagnostics, expression));
  }

  scope(node: ElementNode, type: string): Promise<Scope> {
    return scopeOf(node, type, this.registry, this.session);
  }

  /** Validates a resource against a compiled profile (or base definition) of its type. */
  async resource(resource: Resource, profile: CompiledProfile, path: string, parent?: Frame, contained = false): Promise<void> {
    const typed = toTypedValue(resource) as Typed;
    const frame: Frame = {
      resource: typed,
      rootResource: contained && parent ? parent.rootResource : typed,
      container: contained && parent ? parent.container : resource,
    };
    const scope = await this.scope(profile.root, resource.resourceType);
    await this.object(resource as unknown as Record<string, unknown>, scope, path, true, frame);
    this.invariants(scope.constraints, typed, path, frame);
    for (const id of uncitedContained(resource)) {
      this.report('error', 'invariant', `The contained resource "${id}" is not referenced from elsewhere in the resource, and does not refer to it (dom-3)`, path);
    }
  }

  /** The properties of a JSON object against a scope. */
  async object(value: Record<string, unknown>, scope: Scope, path: string, isResource: boolean, frame: Frame): Promise<void> {
    if (this.depth >= MAX_DEPTH) {
      this.report('error', 'too-costly', `The JSON is nested more than ${MAX_DEPTH} objects deep here; this server does not accept deeper content`, path);
      return;
    }
    this.depth++;
    try {
      await this.properties(value, scope, path, isResource, frame);
    } finally {
      this.depth--;
    }
  }

  private async properties(value: Record<string, unknown>, scope: Scope, path: string, isResource: boolean, frame: Frame): Promise<void> {
    const groups = new Map<ElementNode, Group>();
    for (const key of Object.keys(value)) {
      if (isResource && key === 'resourceType') continue;
      const ext = key.startsWith('_');
      const name = ext ? key.slice(1) : key;
      const target = scope.byKey.get(name);
      if (!target) {
        this.unknownKey(key, name, scope, path);
        continue;
      }
      let group = groups.get(target.el);
      if (!group) {
        group = { type: target.type, key: name };
        groups.set(target.el, group);
      } else if (group.key !== name) {
        this.report('error', 'structure', `Only one of "${group.key}" and "${name}" may be given: both are choices of ${target.el.name}`, `${path}.${name}`);
        continue;
      }
      if (ext) group.ext = value[key];
      else group.values = value[key];
    }
    for (const el of scope.mandatory) {
      if (!groups.has(el)) this.missing(el, path);
    }
    for (const [el, group] of groups) {
      await this.element(el, group, path, frame);
    }
  }

  /** A mandatory element (or the mandatory slices of an element) that the value leaves out. */
  private missing(el: ElementNode, parentPath: string): void {
    const path = `${parentPath}.${el.choice ? el.name.slice(0, -3) : el.name}`;
    if (el.min > 0) {
      this.report('error', 'required', `${el.path}${el.sliceName ? ` (slice "${el.sliceName}")` : ''}: minimum required = ${el.min}, but only found 0`, path);
    }
    for (const slice of el.slicing?.slices ?? []) {
      if (slice.min > 0) {
        this.report('error', 'required', `${el.path}: slice "${slice.sliceName}" requires at least ${slice.min} value(s), but found 0`, path);
      }
    }
  }

  private unknownKey(key: string, name: string, scope: Scope, path: string): void {
    for (const [prefix, el] of scope.byName) {
      if (el.choice && name.startsWith(prefix) && /^[A-Z]/.test(name.slice(prefix.length))) {
        const allowed = el.types.map((t) => t.code).join(', ');
        const suffix = name.slice(prefix.length);
        const lower = suffix[0].toLowerCase() + suffix.slice(1);
        const type = isPrimitiveType(lower) ? lower : suffix;
        this.report('error', 'structure', `"${key}": ${el.name} does not allow the type ${type} here (allowed: ${allowed})`, `${path}.${key}`);
        return;
      }
    }
    this.report('error', 'structure', `Unknown element "${key}": it is not defined here`, `${path}.${key}`);
  }

  /** Every value of one child element: JSON shape, cardinality, then each value. */
  private async element(el: ElementNode, group: Group, parentPath: string, frame: Frame): Promise<void> {
    const name = el.choice ? el.name.slice(0, -3) : el.name;
    const elementPath = `${parentPath}.${name}`;
    const sliceLabel = el.sliceName ? ` (slice "${el.sliceName}")` : '';
    const type = group.type;
    const primitive = isPrimitiveType(type);
    if (!primitive && group.ext !== undefined) {
      this.report('error', 'structure', `"_${group.key}" is only allowed for primitive types, and ${group.key} is a ${type}`, `${parentPath}._${group.key}`);
    }
    const items = this.items(el, group, primitive, elementPath);
    if (!items) return;
    const limit = Number.isFinite(el.max) ? String(el.max) : '*';
    if (items.length > el.max) {
      const text = el.max === 0 ? `${el.path} is not allowed here` : `${el.path}: maximum allowed = ${limit}, but found ${items.length}`;
      this.report('error', 'structure', text, elementPath);
    }
    if (items.length < el.min) {
      this.report('error', 'required', `${el.path}${sliceLabel}: minimum required = ${el.min}, but only found ${items.length}`, elementPath);
    }
    const suffix = el.choice ? `.ofType(${type})` : '';
    const itemPath = (item: Item) => `${elementPath}${suffix}${item.index !== undefined ? `[${item.index}]` : ''}`;
    if (el.slicing?.slices.length) {
      await matchSlice(this, el, type, items, elementPath, itemPath, frame);
    } else {
      for (const item of items) await this.item(el, type, item, itemPath(item), frame);
    }
  }

  /** The values of an element as items, after checking the JSON shape (array or single, no nulls). */
  private items(el: ElementNode, group: Group, primitive: boolean, path: string): Item[] | undefined {
    const { values, ext } = group;
    if (!el.isArray) {
      if (Array.isArray(values) || Array.isArray(ext)) {
        this.report('error', 'structure', `${el.path} takes a single value, not an array`, path);
        return undefined;
      }
      if (values === null && (ext === undefined || ext === null)) {
        this.report('error', 'structure', `${el.path} must not be null (leave it out instead)`, path);
        return undefined;
      }
      // JSON null stands only for a missing entry of an array (R4 json.html); "_gender": null
      // would otherwise pass as no extensions and be stored.
      if (values === null || ext === null) {
        this.report('error', 'structure', `"${values === null ? group.key : '_' + group.key}" must not be null (leave it out instead)`, path);
        return undefined;
      }
      return [{ value: values ?? undefined, ext }];
    }
    if ((values !== undefined && !Array.isArray(values)) || (ext !== undefined && !Array.isArray(ext))) {
      this.report('error', 'structure', `${el.path} takes an array of values (it may repeat), not a single value`, path);
      return undefined;
    }
    const vs = (values ?? []) as unknown[];
    const xs = (ext ?? []) as unknown[];
    const count = Math.max(vs.length, xs.length);
    if (count === 0) {
      this.report('error', 'structure', `${el.path}: an array must not be empty (leave the element out instead)`, path);
      return undefined;
    }
    if (values !== undefined && ext !== undefined && vs.length !== xs.length) {
      this.report('error', 'structure', `"${group.key}" and "_${group.key}" must have the same number of entries`, path);
    }
    const items: Item[] = [];
    for (let index = 0; index < count; index++) {
      const value = vs[index] ?? undefined;
      const x = xs[index] ?? undefined;
      if (value === undefined && (x === undefined || !primitive)) {
        this.report('error', 'structure', `${el.path}: null is not allowed in an array${primitive ? ' unless "_' + group.key + '" has an entry there' : ''}`, `${path}[${index}]`);
        continue;
      }
      items.push({ value, ext: x, index });
    }
    return items;
  }

  /** One value of an element (or slice), of the given type. */
  async item(el: ElementNode, type: string, item: Item, path: string, frame: Frame): Promise<void> {
    if (isPrimitiveType(type)) {
      await this.primitive(el, type, item, path, frame);
      return;
    }
    const value = item.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.report('error', 'structure', `${el.path} must be a JSON object (a ${type}), not ${describeValue(value)}`, path);
      return;
    }
    const keys = Object.keys(value);
    const isResource = type === 'Resource' || isKnownResourceType(type);
    // ele-1 `hasValue() or (children().count() > id.count())`: an id alone is not content
    // (a resource is not an Element: one with only an id is refused for its missing resourceType).
    if (keys.length === 0 || (!isResource && keys.every((key) => key === 'id'))) {
      this.report('error', 'invariant', `${el.path}: an element must have a value or children${keys.length ? ' other than its id' : ', not be empty'} (ele-1)`, path);
      return;
    }
    const object = value as Record<string, unknown>;
    if (isResource) {
      await this.nestedResource(el, type, object, path, frame);
      return;
    }
    if (type === 'Extension' && !el.children.size && !el.types[0]?.profiles.length) {
      await this.extension(el, object, path, frame);
      return;
    }
    const scope = await this.scope(el, type);
    for (const url of scope.unresolved) {
      this.report('warning', 'not-found', `The profile ${url} that ${el.path} names for its ${type} is not known here; checked against ${type} only`, path);
    }
    this.fixedAndPattern(el, object, path);
    if (type === 'Reference') await checkReference(this, el, object, path, frame);
    if (type === 'Coding' && this.options.checkCodeSystems) await checkCodingInSystem(this, object, path);
    if (el.binding) await checkBinding(this, el, type, object, path);
    await this.object(object, scope, path, false, frame);
    this.invariants(scope.constraints, { type: scope.fhirPathType, value: object }, path, frame);
  }

  /** An extension without a slice of its own: checked against the definition its url names. */
  private async extension(el: ElementNode, value: Record<string, unknown>, path: string, frame: Frame): Promise<void> {
    const url = value.url;
    let definition: CompiledProfile | undefined;
    if (typeof url === 'string' && url) {
      const found = this.registry.builtin(url) ?? (await this.registry.resolve(url, this.session));
      if (found.profile?.type === 'Extension') definition = found.profile;
      else if (found.profile) {
        this.report('error', 'structure', `${url} is a profile of ${found.profile.type}, not an extension definition`, `${path}.url`);
      } else if (found.missing !== 'unknown') {
        this.report('warning', 'not-supported', found.message, path);
      } else if (url.includes(':')) {
        // (A relative url names a part of a complex extension: its parent extension is the unknown one.)
        this.report('warning', 'not-found', `The extension ${url} is not known here, so it was only checked as an Extension`, path);
      }
    }
    const node = definition?.root ?? el;
    const scope = await this.scope(node, 'Extension');
    this.fixedAndPattern(el, value, path);
    await this.object(value, scope, path, false, frame);
    this.invariants(scope.constraints, { type: 'Extension', value }, path, frame);
  }

  /** A resource inside this one (contained, Bundle.entry.resource, Parameters.parameter.resource). */
  private async nestedResource(el: ElementNode, type: string, value: Record<string, unknown>, path: string, frame: Frame): Promise<void> {
    const resourceType = value.resourceType;
    if (typeof resourceType !== 'string' || !isKnownResourceType(resourceType)) {
      this.report('error', 'structure', resourceType ? `Unknown resource type "${String(resourceType)}"` : `${el.path} needs a resourceType`, path);
      return;
    }
    const allowed = el.types.map((t) => t.code);
    if (!allowed.includes('Resource') && !allowed.includes(resourceType)) {
      this.report('error', 'structure', `${el.path} may contain ${allowed.join(', ')}, not ${resourceType}`, path);
      return;
    }
    let profile: CompiledProfile | undefined;
    for (const url of el.types.find((t) => t.code === resourceType || t.code === type)?.profiles ?? []) {
      const found = this.registry.builtin(url) ?? (await this.registry.resolve(url, this.session));
      if (found.profile?.type === resourceType) {
        profile = found.profile;
        break;
      }
    }
    profile ??= this.registry.baseType(resourceType);
    if (!profile) return;
    const contained = el.name === 'contained';
    if (contained && !(typeof value.id === 'string' && value.id)) {
      this.report('error', 'required', 'A contained resource needs an id (other elements refer to it as "#id")', path);
    }
    await this.resource(value as unknown as Resource, profile, path, frame, contained);
  }

  private async primitive(el: ElementNode, type: string, item: Item, path: string, frame: Frame): Promise<void> {
    const { value, ext } = item;
    if (ext !== undefined && ext !== null) {
      if (typeof ext !== 'object' || Array.isArray(ext)) {
        this.report('error', 'structure', `The extensions of ${el.path} ("_" element) must be a JSON object`, path);
      } else if (!Object.keys(ext).length) {
        this.report('error', 'invariant', `${el.path}: an element must have a value or children, not be empty (ele-1)`, path);
      } else {
        if ((value === undefined || value === null) && Object.keys(ext).every((key) => key === 'id')) {
          // ele-1: a primitive without a value needs children (extensions), and its id alone is not one.
          this.report('error', 'invariant', `${el.path}: an element must have a value or children other than its id (ele-1)`, path);
        }
        // The element's own children (a profile's extension slices on a primitive: gender.extension:nationalSex)
        // with those of the primitive type (id, extension).
        const { value: inner, ...rest } = ext as Record<string, unknown>;
        if (inner !== undefined) this.report('error', 'structure', 'Unknown element "value": it is not defined here', `${path}.value`);
        await this.object(rest, await this.scope(el, type), path, false, frame);
      }
    } else if (el.children.size && value !== undefined && value !== null) {
      // No "_element": the profile's mandatory extensions of the primitive are missing.
      for (const child of (await this.scope(el, type)).mandatory) this.missing(child, path);
    }
    if (value === undefined || value === null) return;
    const problem = primitiveProblem(type, value);
    if (problem) {
      this.report('error', 'value', problem, path);
      return;
    }
    this.fixedAndPattern(el, value, path);
    if (el.maxLength !== undefined && typeof value === 'string' && value.length > el.maxLength) {
      this.report('error', 'too-long', `${el.path}: the value is longer than ${el.maxLength} characters`, path);
    }
    if (type === 'xhtml' && typeof value === 'string') {
      for (const [key, text] of narrativeProblems(value)) {
        // txt-2 (some non-whitespace content) is an error in R4's text, but the HL7 validator does
        // not enforce it and official examples have empty narratives: a warning here.
        this.report(key === 'txt-2' ? 'warning' : 'error', 'invariant', `${text} (${key})`, path);
      }
    }
    if (el.binding) await checkBinding(this, el, type, value, path);
    if (el.constraints.length) this.invariants(el.constraints, { type, value }, path, frame);
  }

  fixedAndPattern(el: ElementNode, value: unknown, path: string): void {
    if (el.fixed !== undefined && !jsonEquals(value, el.fixed)) {
      this.report('error', 'value', `${el.path}: the value must be exactly ${JSON.stringify(el.fixed)}`, path);
    }
    if (el.pattern !== undefined && !matchesPattern(value, el.pattern)) {
      this.report('error', 'value', `${el.path}: the value must match the pattern ${JSON.stringify(el.pattern)}`, path);
    }
  }

  invariants(constraints: Constraint[], value: Typed, path: string, frame: Frame): void {
    for (const constraint of constraints) {
      const result = evaluateInvariant(constraint, value, frame);
      if (result === 'pass') continue;
      if (result === 'fail') {
        this.report(constraint.severity, 'invariant', `${constraint.key}: ${constraint.human || constraint.expression}`, path);
      } else {
        this.report('warning', 'not-supported', `The invariant ${constraint.key}${constraint.expression ? ` (${constraint.expression})` : ''} could not be evaluated: ${result.message}`, path);
      }
    }
  }
}
