/**
 * Snapshot generation: a base StructureDefinition's snapshot plus a profile's differential
 * gives the profile's snapshot (FHIR R4 "Profiling": snapshot/differential, slicing,
 * constraints), so that tools which read only snapshots (validators, form builders, this
 * server's validation) see every rule.
 *
 * What it does, in the differential's order:
 *  - constrains existing elements: cardinality (never looser than the base), types and
 *    type/target profiles (a subset of the base's), bindings (never weaker than a required
 *    one), fixed and pattern values, invariants (appended, `source` = the profile), texts,
 *    mustSupport, slicing;
 *  - walks into complex types: a differential element below an element whose children are
 *    not in the snapshot yet expands that element's children from its type's definition
 *    (its type profile when it has one, e.g. an extension), from the element it names with
 *    contentReference, or, inside a slice, from the sliced element's own children;
 *  - slices: a differential element with a sliceName becomes a new element at the end of
 *    the sliced element's slices (a copy of the sliced element, min 0 unless given);
 *    extension slices with a type profile take their texts and cardinality from the
 *    extension's definition, and their children (url fixed, value[x]) from its snapshot, so
 *    that a slice's discriminator value is in the snapshot; choice types may be sliced by
 *    type (`value[x]:valueQuantity`) without a declared slicing;
 *  - choice renames: `Observation.valueQuantity` in a differential constrains
 *    `Observation.value[x]` to Quantity (paths stay `value[x]` in the snapshot).
 * Anything it cannot do faithfully is a SnapshotError naming the element, never a guess
 * (re-slicing, `slice/reslice`, is one of those).
 *
 * Pure: no I/O; definitions come from the resolver (see resolver.ts).
 */
import type { ElementDefinition, ElementDefinitionType, StructureDefinition } from '@medplum/fhirtypes';

export type DefinitionResolver = (url: string) => StructureDefinition | undefined;

export class SnapshotError extends Error {
  constructor(
    readonly profile: string,
    message: string
  ) {
    super(`${profile}: ${message}`);
    this.name = 'SnapshotError';
  }
}

const CORE = 'http://hl7.org/fhir/StructureDefinition/';
/** Keys never copied from a differential element onto its snapshot element (handled apart or identity). */
const SPECIAL = new Set([
  'id', 'path', 'base', 'sliceName', 'min', 'max', 'type', 'binding', 'constraint', 'condition', 'slicing',
  'mapping', 'alias', 'isModifier', 'isSummary', 'extension', 'contentReference',
]);

const clone = <T>(value: T): T => structuredClone(value);
const maxOf = (max: string | undefined): number => (max === undefined || max === '*' ? Infinity : Number(max));
const capitalize = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** "Patient.identifier:idCard.system" -> "Patient.identifier.system". */
export function pathOfId(id: string): string {
  return id
    .split('.')
    .map((segment) => segment.split(':')[0])
    .join('.');
}

/** The differential element's id, from its id or from its path and the slices named before it. */
function idsOf(differential: ElementDefinition[]): string[] {
  const openSlices = new Map<string, string>(); // path -> id of the last slice of that path
  return differential.map((d) => {
    let id = d.id;
    if (!id) {
      const segments = (d.path ?? '').split('.');
      let path = segments[0];
      let built = segments[0];
      for (let i = 1; i < segments.length; i++) {
        path += '.' + segments[i];
        built += '.' + segments[i];
        const last = i === segments.length - 1;
        if (last && d.sliceName) built += ':' + d.sliceName;
        else if (!last && openSlices.has(path)) built = openSlices.get(path) as string;
      }
      id = built;
    }
    if (d.sliceName) openSlices.set(pathOfId(id), id);
    return id;
  });
}

class Builder {
  private readonly elements: ElementDefinition[];
  private readonly url: string;

  constructor(
    private readonly profile: StructureDefinition,
    private readonly base: StructureDefinition,
    private readonly resolve: DefinitionResolver
  ) {
    this.elements = clone(base.snapshot?.element ?? []);
    this.url = profile.url ?? profile.name ?? '(profile)';
    if (!this.elements.length) this.fail(`base ${base.url} has no snapshot`);
  }

  fail(message: string): never {
    throw new SnapshotError(this.url, message);
  }

  build(): ElementDefinition[] {
    const differential = this.profile.differential?.element ?? [];
    const ids = idsOf(differential);
    differential.forEach((diff, i) => {
      const id = this.locate(ids[i]);
      this.merge(this.get(id), diff);
    });
    const seen = new Set<string>();
    for (const el of this.elements) {
      if (seen.has(el.id as string)) this.fail(`element ${el.id} appears twice`);
      seen.add(el.id as string);
    }
    return this.elements;
  }

  private index(id: string): number {
    return this.elements.findIndex((e) => e.id === id);
  }

  private get(id: string): ElementDefinition {
    const i = this.index(id);
    if (i < 0) this.fail(`no element ${id}`);
    return this.elements[i];
  }

  private hasChildren(id: string): boolean {
    return this.elements.some((e) => (e.id as string).startsWith(id + '.'));
  }

  /**
   * Finds (creating slices and expanding children on the way) the snapshot element a
   * differential id names; returns its snapshot id (choice renames resolved).
   */
  private locate(rawId: string): string {
    const segments = rawId.split('.');
    let id = segments[0];
    if (id !== this.elements[0].id) this.fail(`element ${rawId} is not part of ${this.elements[0].id}`);
    for (let i = 1; i < segments.length; i++) {
      const [name, ...rest] = segments[i].split(':');
      const slice = rest.join(':');
      this.ensureChildren(id);
      let childId = `${id}.${name}`;
      if (this.index(childId) < 0) childId = this.renameChoice(id, name) ?? this.fail(`no element ${childId} in ${this.base.type}`);
      id = childId;
      if (slice) {
        if (slice.includes('/')) this.fail(`${rawId}: re-slicing (${slice}) is not supported`);
        const sliceId = `${id}:${slice}`;
        if (this.index(sliceId) < 0) this.createSlice(id, slice);
        id = sliceId;
      }
    }
    return id;
  }

  /** `valueQuantity` under a parent that has `value[x]` allowing Quantity: constrains value[x] to Quantity. */
  private renameChoice(parentId: string, name: string): string | undefined {
    for (const el of this.elements) {
      const id = el.id as string;
      if (!id.startsWith(parentId + '.') || !id.endsWith('[x]') || id.slice(parentId.length + 1).includes('.')) continue;
      const stem = id.slice(parentId.length + 1, -3);
      if (!name.startsWith(stem)) continue;
      const typeName = name.slice(stem.length);
      const type = el.type?.find((t) => capitalize(t.code as string) === typeName);
      if (!type) continue;
      if ((el.type?.length ?? 0) > 1) {
        if (this.hasChildren(id)) this.fail(`${parentId}.${name}: ${id} already has children for several types`);
        el.type = [type];
      }
      return id;
    }
    return undefined;
  }

  /** Puts the children of an element into the snapshot, right after it, if they are not there yet. */
  private ensureChildren(id: string): void {
    if (this.hasChildren(id)) return;
    const at = this.index(id);
    const el = this.elements[at];
    let children: ElementDefinition[] | undefined;
    if (el.contentReference) {
      const target = el.contentReference.slice(el.contentReference.indexOf('#') + 1);
      const source = (this.base.snapshot?.element ?? []).filter((e) => (e.id as string).startsWith(target + '.'));
      children = source.map((e) => rebase(e, target, id, target, el.path as string));
    } else {
      const unsliced = unslicedId(id);
      const profiled = el.type?.length === 1 && el.type[0].profile?.length;
      if (unsliced && !profiled && this.hasChildren(unsliced)) {
        const source = this.elements.filter((e) => (e.id as string).startsWith(unsliced + '.'));
        children = source.map((e) => rebase(e, unsliced, id, pathOfId(unsliced), el.path as string));
      } else {
        children = this.typeChildren(el);
      }
    }
    this.elements.splice(at + 1, 0, ...children);
  }

  /** The children of an element from the definition of its (single) type. */
  private typeChildren(el: ElementDefinition): ElementDefinition[] {
    const codes = [...new Set((el.type ?? []).map((t) => t.code))];
    if (codes.length !== 1) {
      this.fail(`cannot constrain children of ${el.id}: it has ${codes.length ? 'several types (' + codes.join(', ') + ')' : 'no type'}`);
    }
    const type = (el.type as ElementDefinitionType[])[0];
    const url = type.profile?.[0] ?? CORE + type.code;
    const definition = this.snapshotOf(url, el.id as string);
    const [root, ...rest] = definition.snapshot?.element ?? [];
    if (!root || !rest.length) this.fail(`${el.id}: type ${type.code} has no children to constrain`);
    return rest.map((e) => rebase(e, root.id as string, el.id as string, root.path as string, el.path as string));
  }

  private snapshotOf(url: string, forId: string): StructureDefinition {
    const definition = this.resolve(url.split('|')[0]);
    if (!definition) this.fail(`${forId}: cannot resolve ${url}`);
    if (definition.snapshot?.element?.length) return definition;
    if (!definition.baseDefinition) this.fail(`${forId}: ${url} has neither a snapshot nor a base`);
    return withSnapshot(definition, this.resolve);
  }

  private createSlice(slicedId: string, name: string): void {
    const sliced = this.get(slicedId);
    if (!sliced.slicing) {
      const last = slicedId.slice(slicedId.lastIndexOf('.') + 1);
      if (last === 'extension' || last === 'modifierExtension') {
        sliced.slicing = { discriminator: [{ type: 'value', path: 'url' }], rules: 'open' };
      } else if (last.endsWith('[x]')) {
        sliced.slicing = { discriminator: [{ type: 'type', path: '$this' }], ordered: false, rules: 'open' };
      } else {
        this.fail(`slice ${name} of ${slicedId}, which has no slicing`);
      }
    }
    const slice: ElementDefinition = clone(sliced);
    delete slice.slicing;
    slice.id = `${slicedId}:${name}`;
    slice.sliceName = name;
    slice.min = 0;
    if (slicedId.endsWith('[x]')) {
      const type = sliced.type?.find((t) => slicedId.slice(slicedId.lastIndexOf('.') + 1, -3) + capitalize(t.code as string) === name);
      if (!type) this.fail(`type slice ${name} names no type of ${slicedId}`);
      slice.type = [clone(type)];
    }
    // After the sliced element, its children, and the slices before this one.
    let end = this.index(slicedId);
    for (let i = end + 1; i < this.elements.length; i++) {
      const id = this.elements[i].id as string;
      if (id.startsWith(slicedId + '.') || id.startsWith(slicedId + ':')) end = i;
      else break;
    }
    this.elements.splice(end + 1, 0, slice);
  }

  private merge(el: ElementDefinition, diff: ElementDefinition): void {
    const where = el.id as string;
    if (diff.min !== undefined) {
      if (diff.min < (el.min ?? 0) && !el.sliceName) this.fail(`${where}: min ${diff.min} is below the base's ${el.min}`);
      el.min = diff.min;
    }
    if (diff.max !== undefined) {
      if (maxOf(diff.max) > maxOf(el.max)) this.fail(`${where}: max ${diff.max} exceeds the base's ${el.max}`);
      el.max = diff.max;
    }
    if ((el.min ?? 0) > maxOf(el.max)) this.fail(`${where}: min ${el.min} exceeds max ${el.max}`);
    if (diff.type) el.type = this.checkedTypes(el, diff);
    if (diff.binding) {
      if (!diff.binding.strength) this.fail(`${where}: binding without strength`);
      const order = ['example', 'preferred', 'extensible', 'required'];
      if (el.binding?.strength && order.indexOf(diff.binding.strength) < order.indexOf(el.binding.strength)) {
        this.fail(`${where}: binding ${diff.binding.strength} is weaker than the base's ${el.binding.strength}`);
      }
      el.binding = clone(diff.binding);
    }
    for (const c of diff.constraint ?? []) {
      const existing = el.constraint?.find((x) => x.key === c.key);
      if (existing && existing.expression !== c.expression) this.fail(`${where}: constraint ${c.key} already exists with another expression`);
      if (!existing) el.constraint = [...(el.constraint ?? []), { ...clone(c), source: c.source ?? this.profile.url }];
    }
    if (diff.condition) el.condition = [...new Set([...(el.condition ?? []), ...diff.condition])];
    if (diff.alias) el.alias = [...new Set([...(el.alias ?? []), ...diff.alias])];
    if (diff.mapping) el.mapping = [...(el.mapping ?? []), ...clone(diff.mapping)];
    if (diff.extension) el.extension = [...(el.extension ?? []), ...clone(diff.extension)];
    if (diff.slicing) {
      if (el.slicing?.rules === 'closed' && diff.slicing.rules && diff.slicing.rules !== 'closed') this.fail(`${where}: closed slicing cannot be reopened`);
      el.slicing = { ...(el.slicing ?? {}), ...clone(diff.slicing) };
    }
    for (const flag of ['isModifier', 'isSummary'] as const) {
      if (diff[flag] !== undefined && diff[flag] !== (el[flag] ?? false)) this.fail(`${where}: a profile cannot change ${flag}`);
    }
    for (const [key, value] of Object.entries(diff)) {
      if (SPECIAL.has(key)) continue;
      const record = el as unknown as Record<string, unknown>;
      if ((key.startsWith('fixed') || key.startsWith('pattern')) && record[key] !== undefined && JSON.stringify(record[key]) !== JSON.stringify(value)) {
        this.fail(`${where}: ${key} conflicts with the base's value`);
      }
      record[key] = clone(value);
    }
    this.applyExtensionProfile(el, diff);
  }

  /** The differential's types, checked against the base element's and completed from them. */
  private checkedTypes(el: ElementDefinition, diff: ElementDefinition): ElementDefinitionType[] {
    const where = el.id as string;
    return (diff.type ?? []).map((t) => {
      const baseType = el.type?.find((b) => b.code === t.code);
      if (!baseType) this.fail(`${where}: type ${t.code} is not allowed by the base (${(el.type ?? []).map((b) => b.code).join(', ')})`);
      for (const target of t.targetProfile ?? []) this.checkTarget(where, target, baseType.targetProfile);
      const merged: ElementDefinitionType = { ...clone(baseType), ...clone(t) };
      return merged;
    });
  }

  private checkTarget(where: string, target: string, allowed: string[] | undefined): void {
    if (!allowed?.length || allowed.includes(target) || allowed.includes(CORE + 'Resource')) return;
    const definition = this.resolve(target.split('|')[0]);
    if (!definition) return; // an unknown profile cannot be checked here; resolution is the validator's business
    if (!allowed.includes(CORE + definition.type) && !allowed.includes(definition.baseDefinition as string)) {
      this.fail(`${where}: target ${target} is not one of ${allowed.join(', ')}`);
    }
  }

  /** An extension slice with a type profile takes its texts, cardinality and children from the extension. */
  private applyExtensionProfile(el: ElementDefinition, diff: ElementDefinition): void {
    const type = el.type?.length === 1 ? el.type[0] : undefined;
    if (!el.sliceName || type?.code !== 'Extension' || !type.profile?.length || !diff.type) return;
    const extension = this.snapshotOf(type.profile[0], el.id as string);
    const root = extension.snapshot?.element?.[0] as ElementDefinition;
    if (!diff.short && root.short) el.short = root.short;
    if (!diff.definition && root.definition) el.definition = root.definition;
    if (!diff.comment && root.comment) el.comment = root.comment;
    if (diff.max === undefined && maxOf(root.max) < maxOf(el.max)) el.max = root.max;
    if (!this.hasChildren(el.id as string)) this.ensureChildren(el.id as string);
  }
}

/** "X.a:s" -> "X.a" when the last segment is a slice; undefined otherwise. */
function unslicedId(id: string): string | undefined {
  const dot = id.lastIndexOf('.');
  const colon = id.lastIndexOf(':');
  return colon > dot ? id.slice(0, colon) : undefined;
}

/** A copy of an element moved from one parent to another (ids and paths rewritten, base kept). */
function rebase(el: ElementDefinition, fromId: string, toId: string, fromPath: string, toPath: string): ElementDefinition {
  const copy = clone(el);
  copy.id = toId + (el.id as string).slice(fromId.length);
  copy.path = toPath + (el.path as string).slice(fromPath.length);
  return copy;
}

/** The snapshot elements of a profile whose base snapshot is given. */
export function generateSnapshot(profile: StructureDefinition, base: StructureDefinition, resolve: DefinitionResolver): ElementDefinition[] {
  if (profile.derivation && profile.derivation !== 'constraint') {
    throw new SnapshotError(profile.url ?? '(profile)', `derivation ${profile.derivation} is not a constraint on ${base.url}`);
  }
  if (profile.type !== base.type) {
    throw new SnapshotError(profile.url ?? '(profile)', `type ${profile.type} differs from the base's ${base.type}`);
  }
  return new Builder(profile, base, resolve).build();
}

/** The profile with its snapshot, its base found through the resolver (recursively, for profiles on profiles). */
export function withSnapshot(profile: StructureDefinition, resolve: DefinitionResolver): StructureDefinition {
  const url = profile.url ?? '(profile)';
  if (!profile.baseDefinition) throw new SnapshotError(url, 'no baseDefinition');
  let base = resolve(profile.baseDefinition.split('|')[0]);
  if (!base) throw new SnapshotError(url, `cannot resolve the base ${profile.baseDefinition}`);
  if (!base.snapshot?.element?.length) {
    if (base.url === profile.url) throw new SnapshotError(url, 'is its own base');
    base = withSnapshot(base, resolve);
  }
  return { ...profile, snapshot: { element: generateSnapshot(profile, base, resolve) } };
}
