/**
 * The pack's extensions: simple extensions whose value is a Coding from a national table.
 */
import type { ElementDefinitionBinding, StructureDefinition, StructureDefinitionContext } from '@medplum/fhirtypes';
import { CS, sdUrl, structureDefinition, vsUrl } from './common';

interface ExtensionSource {
  id: string;
  name: string;
  title: string;
  description: string;
  context: string[];
  system: string;
  binding: ElementDefinitionBinding;
}

function codedExtension(source: ExtensionSource): StructureDefinition {
  return structureDefinition({
    id: source.id,
    name: source.name,
    title: source.title,
    description: source.description,
    type: 'Extension',
    context: source.context.map((expression): StructureDefinitionContext => ({ type: 'element', expression })),
    elements: [
      { id: 'Extension', short: source.title, definition: source.description, max: '1' },
      { id: 'Extension.extension', max: '0' },
      { id: 'Extension.url', fixedUri: sdUrl(source.id) },
      {
        id: 'Extension.value[x]',
        min: 1,
        type: [{ code: 'Coding' }],
        patternCoding: { system: source.system },
        binding: source.binding,
      },
    ],
  });
}

export const EXT = {
  ethnicity: sdUrl('cn-ethnicity'),
  nationality: sdUrl('cn-nationality'),
  education: sdUrl('cn-education'),
  sex: sdUrl('cn-sex'),
  division: sdUrl('cn-address-division'),
} as const;

export function packExtensions(): StructureDefinition[] {
  return [
    codedExtension({
      id: 'cn-ethnicity', name: 'CNEthnicity', title: '民族 (GB 3304)',
      description: 'The ethnic group of the person, coded with GB 3304-1991.',
      context: ['Patient'], system: CS.ethnicity,
      binding: { strength: 'required', description: 'GB 3304 ethnic groups', valueSet: vsUrl('gb-3304') },
    }),
    codedExtension({
      id: 'cn-nationality', name: 'CNNationality', title: '国籍 (GB/T 2659)',
      description: 'The nationality of the person, coded with GB/T 2659 (numeric country codes).',
      context: ['Patient'], system: CS.country,
      binding: { strength: 'required', description: 'GB/T 2659 countries and regions', valueSet: vsUrl('gb-t-2659') },
    }),
    codedExtension({
      id: 'cn-education', name: 'CNEducation', title: '学历 (GB/T 4658)',
      description: 'The highest education level of the person, coded with GB/T 4658 (top-level codes in this pack; sub-codes allowed).',
      context: ['Patient'], system: CS.education,
      binding: { strength: 'extensible', description: 'GB/T 4658 education levels', valueSet: vsUrl('gb-t-4658') },
    }),
    codedExtension({
      id: 'cn-sex', name: 'CNSex', title: '性别代码 (GB/T 2261.1)',
      description:
        'The national sex code (GB/T 2261.1-2003) behind Patient.gender, which keeps the distinction between 0 (unknown) and ' +
        '9 (not stated) that administrative gender does not have.',
      context: ['Patient.gender'], system: CS.sex,
      binding: { strength: 'required', description: 'GB/T 2261.1 sex codes', valueSet: vsUrl('gb-t-2261-1') },
    }),
    codedExtension({
      id: 'cn-address-division', name: 'CNAddressDivision', title: '行政区划代码 (GB/T 2260)',
      description:
        'The administrative division of the address (GB/T 2260 6-digit code): the county (区/县) where known, else the city or province.',
      context: ['Address'], system: CS.division,
      binding: { strength: 'required', description: 'GB/T 2260 administrative divisions', valueSet: vsUrl('gb-t-2260') },
    }),
  ];
}
