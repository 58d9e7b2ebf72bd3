/**
 * The national code tables, as CodeSystems whose canonical URL is the urn:oid form of the
 * OID the national specifications (WS 363/364, WS/T 500) give them: that is what
 * Coding.system carries in data exchanged in China, and a Coding's system must equal the
 * CodeSystem's url for any FHIR tool to find the code. Codes and names are those of
 * national-standards.md; where it gives only part of a table the CodeSystem says so
 * (content `fragment`) and where it gives none the CodeSystem only names the system
 * (content `not-present`), so validators know the system exists without inventing codes.
 */
import type { CodeSystem, CodeSystemConcept } from '@medplum/fhirtypes';
import { canonical, CS, vsUrl } from './common';

export interface TableSource {
  id: string;
  url: string;
  name: string;
  title: string;
  description: string;
  /** The edition of the standard, when known; else the pack version. */
  version?: string;
  status?: 'active' | 'draft';
  content?: CodeSystem['content'];
  hierarchyMeaning?: 'is-a' | 'part-of';
  property?: CodeSystem['property'];
  concept?: CodeSystemConcept[];
}

/** A code system of the pack (the ValueSet of all its codes has the same id). */
export function codeSystem(source: TableSource): CodeSystem {
  const count = (concepts: CodeSystemConcept[] = []): number => concepts.reduce((n, c) => n + 1 + count(c.concept), 0);
  const base = canonical('CodeSystem', source.id, source.url, source.name, source.title, source.status ?? 'active', source.description);
  return {
    ...base,
    ...(source.version && { version: source.version }),
    identifier: [{ system: 'urn:ietf:rfc:3986', value: source.url }],
    caseSensitive: true,
    ...(source.content !== 'not-present' && { valueSet: vsUrl(source.id) }),
    ...(source.hierarchyMeaning && { hierarchyMeaning: source.hierarchyMeaning }),
    content: source.content ?? 'complete',
    ...(source.concept && { count: count(source.concept) }),
    ...(source.property && { property: source.property }),
    ...(source.concept && { concept: source.concept }),
  } as CodeSystem;
}

/** A concept with a Chinese display and, when given, an English designation. */
export function concept(code: string, display: string, english?: string, extra: Partial<CodeSystemConcept> = {}): CodeSystemConcept {
  return { code, display, ...(english && { designation: [{ language: 'en', value: english }] }), ...extra };
}

/** GB 3304-1991 (national-standards.md): numeric code, name, letter code; legacy names kept as designations. */
const ETHNIC_GROUPS: [string, string, string, string?][] = [
  ['01', '汉', 'HA'], ['02', '蒙古', 'MG'], ['03', '回', 'HU'], ['04', '藏', 'ZA'], ['05', '维吾尔', 'UG'],
  ['06', '苗', 'MH'], ['07', '彝', 'YI'], ['08', '壮', 'ZH'], ['09', '布依', 'BY'], ['10', '朝鲜', 'CS'],
  ['11', '满', 'MA'], ['12', '侗', 'DO'], ['13', '瑶', 'YA'], ['14', '白', 'BA'], ['15', '土家', 'TJ'],
  ['16', '哈尼', 'HN'], ['17', '哈萨克', 'KZ'], ['18', '傣', 'DA'], ['19', '黎', 'LI'], ['20', '傈僳', 'LS'],
  ['21', '佤', 'VA'], ['22', '畲', 'SH'], ['23', '高山', 'GS'], ['24', '拉祜', 'LH'], ['25', '水', 'SU'],
  ['26', '东乡', 'DX'], ['27', '纳西', 'NX'], ['28', '景颇', 'JP'], ['29', '柯尔克孜', 'KG'], ['30', '土', 'TU'],
  ['31', '达斡尔', 'DU'], ['32', '仫佬', 'ML'], ['33', '羌', 'QI'], ['34', '布朗', 'BL'], ['35', '撒拉', 'SL'],
  ['36', '毛南', 'MN', '毛难'], ['37', '仡佬', 'GL'], ['38', '锡伯', 'XB'], ['39', '阿昌', 'AC'], ['40', '普米', 'PM'],
  ['41', '塔吉克', 'TA'], ['42', '怒', 'NU'], ['43', '乌孜别克', 'UZ'], ['44', '俄罗斯', 'RS'], ['45', '鄂温克', 'EW'],
  ['46', '德昂', 'DE', '崩龙'], ['47', '保安', 'BN'], ['48', '裕固', 'YG'], ['49', '京', 'GI'], ['50', '塔塔尔', 'TT'],
  ['51', '独龙', 'DR'], ['52', '鄂伦春', 'OR'], ['53', '赫哲', 'HZ'], ['54', '门巴', 'MB'], ['55', '珞巴', 'LB'],
  ['56', '基诺', 'JN'],
];

const SYNONYM = { system: 'http://snomed.info/sct', code: '900000000000013009', display: 'Synonym' };

function ethnicGroups(): CodeSystemConcept[] {
  const groups = ETHNIC_GROUPS.map(([code, name, letters, legacy]) => ({
    code,
    display: `${name}族`,
    ...(legacy && { designation: [{ language: 'zh', use: SYNONYM, value: `${legacy}族` }] }),
    property: [{ code: 'letter-code', valueString: letters }],
  }));
  return [...groups, { code: '97', display: '其他' }, { code: '98', display: '外国血统中国籍人士' }];
}

export function nationalCodeSystems(): CodeSystem[] {
  return [
    codeSystem({
      id: 'gb-t-2261-1', url: CS.sex, name: 'GBT2261_1Sex', title: 'GB/T 2261.1-2003 人的性别代码', version: '2003',
      description: 'Sex codes of GB/T 2261.1-2003. Codes 5 and 6 of the 1980 edition are no longer valid.',
      concept: [
        concept('0', '未知的性别', 'Unknown'), concept('1', '男性', 'Male'),
        concept('2', '女性', 'Female'), concept('9', '未说明的性别', 'Not stated'),
      ],
    }),
    codeSystem({
      id: 'gb-t-2261-2', url: CS.marital, name: 'GBT2261_2MaritalStatus', title: 'GB/T 2261.2-2003 婚姻状况代码', version: '2003',
      description: 'Marital status codes of GB/T 2261.2-2003; 21-23 are kinds of 20 (married).',
      hierarchyMeaning: 'is-a',
      concept: [
        concept('10', '未婚', 'Unmarried'),
        concept('20', '已婚', 'Married', {
          concept: [concept('21', '初婚', 'First marriage'), concept('22', '再婚', 'Remarried'), concept('23', '复婚', 'Remarried to a former spouse')],
        }),
        concept('30', '丧偶', 'Widowed'), concept('40', '离婚', 'Divorced'), concept('90', '未说明', 'Not stated'),
      ],
    }),
    codeSystem({
      id: 'gb-3304', url: CS.ethnicity, name: 'GB3304EthnicGroup', title: 'GB 3304-1991 中国各民族名称的罗马字母拼写法和代码', version: '1991',
      description: 'The 56 ethnic groups of GB 3304-1991 with their two-letter codes, plus 97 (other) and 98 (Chinese nationals of foreign origin).',
      property: [{ code: 'letter-code', description: 'The two-letter romanised code of GB 3304', type: 'string' }],
      concept: ethnicGroups(),
    }),
    codeSystem({
      id: 'gb-t-4658', url: CS.education, name: 'GBT4658Education', title: 'GB/T 4658 学历代码', status: 'draft', content: 'fragment',
      description:
        'Top-level education codes of GB/T 4658. Only the top level is given here (the standard has sub-codes such as 11, 21); ' +
        'of these, only 60 and 90 are confirmed by a second source: the others need confirmation before being relied on.',
      property: [{ code: 'confirmed', description: 'Whether the code is confirmed by a second source', type: 'boolean' }],
      concept: [
        ['10', 'Graduate', false], ['20', 'Bachelor', false], ['30', 'College', false], ['40', 'Vocational', false],
        ['60', 'Senior high school', true], ['70', 'Junior high school', false], ['80', 'Primary school', false], ['90', 'Other', true],
      ].map(([code, display, confirmed]) => ({ code: code as string, display: display as string, property: [{ code: 'confirmed', valueBoolean: confirmed as boolean }] })),
    }),
    codeSystem({
      id: 'cv02-01-101', url: CS.idDocument, name: 'CV0201101IdDocumentType', title: 'CV02.01.101 身份证件类别代码',
      description: 'Types of identity document (WS 364 value set CV02.01.101).',
      concept: [
        concept('01', '居民身份证', 'Resident identity card'), concept('02', '居民户口簿', 'Household register'),
        concept('03', '护照', 'Passport'), concept('04', '军官证', 'Military officer certificate'), concept('05', '驾驶证', 'Driving licence'),
        concept('06', '港澳居民来往内地通行证', 'Mainland travel permit for Hong Kong and Macao residents'),
        concept('07', '台湾居民来往内地通行证', 'Mainland travel permit for Taiwan residents'),
        concept('99', '其他法定有效证件', 'Other legally valid document'),
      ],
    }),
    codeSystem({
      id: 'cv09-00-404', url: CS.patientType, name: 'CV0900404PatientType', title: 'CV09.00.404 患者类型代码',
      description: 'Patient type of a visit (WS 364 value set CV09.00.404).',
      concept: [concept('1', '门诊', 'Outpatient'), concept('2', '急诊', 'Emergency'), concept('3', '住院', 'Inpatient'), concept('9', '其他', 'Other')],
    }),
    codeSystem({
      id: 'abo-blood-group', url: CS.abo, name: 'ABOBloodGroup', title: 'ABO 血型代码',
      description: 'ABO blood group (national code table 2.16.156.10011.2.3.1.85).',
      concept: [
        concept('1', 'A'), concept('2', 'B'), concept('3', 'O'), concept('4', 'AB'),
        concept('5', 'unknown', 'Unknown'), concept('6', 'not tested', 'Not tested'),
      ],
    }),
    codeSystem({
      id: 'rh-blood-group', url: CS.rh, name: 'RhBloodGroup', title: 'Rh(D) 血型代码',
      description: 'Rh(D) blood group (national code table 2.16.156.10011.2.3.1.250).',
      concept: [concept('1', 'negative', 'Negative'), concept('2', 'positive', 'Positive'), concept('3', 'unknown', 'Unknown'), concept('4', 'not tested', 'Not tested')],
    }),
    codeSystem({
      id: 'wst-500-document-type', url: CS.documentType, name: 'WST500DocumentType', title: 'WS/T 500 共享文档类型', status: 'draft', content: 'fragment',
      description:
        'Shared-document types C0001-C0053 of WS/T 500: only the types national-standards.md names, with its descriptions ' +
        '(it does not say which of C0004/C0005 is which kind of prescription).',
      concept: [
        concept('C0001', 'record summary'), concept('C0002', 'outpatient/emergency record'), concept('C0004', 'prescription'),
        concept('C0005', 'prescription'), concept('C0006', 'examination report'), concept('C0007', 'laboratory report'),
        concept('C0009', 'surgery record'), concept('C0032', 'inpatient front sheet'), concept('C0053', 'discharge summary'),
      ],
    }),
    codeSystem({
      id: 'gb-t-4761', url: CS.familyRelationship, name: 'GBT4761FamilyRelationship', title: 'GB/T 4761 家庭关系代码', content: 'not-present',
      description: 'Family relationship codes of GB/T 4761. The codes are not part of this pack: the code system is named so that its codes are recognised as national codes.',
    }),
    codeSystem({
      id: 'icd-10-cn-clinical', url: CS.icd10, name: 'ICD10CNClinical', title: 'ICD-10 国家临床版', version: '国家临床版2.0', content: 'not-present',
      description:
        'The national clinical edition of ICD-10 (2.0), whose codes carry suffixes such as J45.900x001. Coding.version is "国家临床版2.0". ' +
        'Never use http://hl7.org/fhir/sid/icd-10 (WHO ICD-10) for these codes. The codes are not part of this pack.',
    }),
    codeSystem({
      id: 'icd-9-cm-3', url: CS.icd9cm3, name: 'ICD9CM3', title: 'ICD-9-CM-3 手术操作分类', content: 'not-present',
      description: 'ICD-9-CM volume 3 procedures as used in China. The codes are not part of this pack.',
    }),
  ];
}
