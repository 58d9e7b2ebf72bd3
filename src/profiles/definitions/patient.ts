/**
 * CN Patient: identifiers sliced by national namespace with the GB 11643 checks on the
 * resident identity number, gender with the national sex code, ethnicity, nationality,
 * education, marital status with a GB/T 2261.2 coding, addresses with their division code.
 *
 * The identity-number rules (cn-pat-1..4) are invariants on the value of the idCard slice
 * (Patient.identifier:idCard.value), and of the slices of its two aliases (the HL7 China
 * community OIDs its NamingSystem lists): the slice is decided by the namespace, so the rules apply
 * to exactly the identifiers in it, and a broken rule is reported at the value itself
 * (Patient.identifier[0].value), where the wrong digit is.
 */
import type { StructureDefinition } from '@medplum/fhirtypes';
import { CS, type DiffElement, ID, ID_CARD_ALIASES, invariant, oid, slicedBy, structureDefinition, vsUrl } from './common';
import { EXT } from './extensions';

/**
 * GB 11643 check (ISO 7064 MOD 11-2): with weights 2^(18-i) mod 11 for positions 1-17 and 1 for
 * the check character (X = 10), a valid number sums to 1 modulo 11. Written as a sum over the
 * whole number because FHIRPath evaluates function arguments against the function's input, so
 * "'10X98765432'.substring(<sum over value>)" could not see `value`.
 */
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const EIGHTEEN = "'^[0-9]{17}[0-9X]$'";
const ANY_FORM = "'^([0-9]{17}[0-9X]|[0-9]{15})$'";

function checkDigitExpression(): string {
  const sum = WEIGHTS.map((w, i) => `substring(${i}, 1).toInteger() * ${w}`).join(' + ');
  const check = "iif(substring(17, 1) = 'X', 10, substring(17, 1).toInteger())";
  return `matches(${EIGHTEEN}) implies (${sum} + ${check}) mod 11 = 1`;
}

/**
 * The birth date of an 18-digit number (YYYYMMDD at 7-14) or a legacy 15-digit one (YYMMDD at
 * 7-12, 19YY): a real calendar date (month lengths, leap years), not in the future.
 */
function birthDateExpression(): string {
  const year = 'substring(0, 4).toInteger()';
  const month = 'substring(4, 2)';
  const day = 'substring(6, 2).toInteger()';
  const leap = `((${year} mod 4 = 0 and ${year} mod 100 != 0) or ${year} mod 400 = 0)`;
  const days = `iif(${month} = '02', iif(${leap}, 29, 28), iif(${month} in ('04' | '06' | '09' | '11'), 30, 31))`;
  return (
    `matches(${ANY_FORM}) implies ` +
    `select(iif(length() = 18, substring(6, 8), '19' + substring(6, 6))).all(` +
    `${month}.toInteger() >= 1 and ${month}.toInteger() <= 12 and ${day} >= 1 and ${day} <= ${days} ` +
    `and (substring(0, 4) + '-' + ${month} + '-' + substring(6, 2)).toDate() <= today())`
  );
}

/** The first two digits name a province-level division (or 81/82/83 of a residence permit). */
function provinceExpression(provinces: string[]): string {
  const codes = [...new Set([...provinces, '81', '82', '83'])].sort();
  return `matches(${ANY_FORM}) implies substring(0, 2) in (${codes.map((c) => `'${c}'`).join(' | ')})`;
}

/**
 * The resident identity number namespace and its aliases (the NamingSystem cn-id-id-card): a
 * number under any of them is a GB 11643 number, checked by the same rules.
 */
const RESIDENT_SYSTEMS = [ID.idCard, ...Object.values(ID_CARD_ALIASES).map((a) => oid(a.oid))];
const IS_RESIDENT_SYSTEM = `(${RESIDENT_SYSTEMS.map((s) => `system = '${s}'`).join(' or ')})`;

const SEQUENCE_DIGIT = "iif(value.length() = 18, value.substring(16, 1), value.substring(14, 1)).toInteger()";

export const PATIENT_INVARIANTS = {
  format: invariant('cn-pat-1', 'A resident identity number has 18 characters (17 digits and a check digit or X) or, issued before 1999, 15 digits', `matches(${ANY_FORM})`),
  checkDigit: invariant('cn-pat-2', 'The check character of an 18-character resident identity number is the GB 11643 (ISO 7064 MOD 11-2) check of its first 17 digits', checkDigitExpression()),
  birthDate: invariant('cn-pat-3', 'The birth date in a resident identity number is a real date, not in the future', birthDateExpression()),
  documentType: invariant(
    'cn-pat-5',
    'An identifier typed as a resident identity card (CV02.01.101 code 01) is in the resident identity number namespace (or an alias of it)',
    `type.coding.where(system = '${CS.idDocument}' and code = '01').exists() implies ${IS_RESIDENT_SYSTEM}`
  ),
  parity: invariant(
    'cn-pat-6',
    'The sequence digit of a resident identity number is odd for men and even for women',
    `identifier.where(${IS_RESIDENT_SYSTEM} and value.matches(${ANY_FORM})).all(%resource.gender.empty() or (%resource.gender != 'male' and %resource.gender != 'female') or ((${SEQUENCE_DIGIT} mod 2 = 1) = (%resource.gender = 'male')))`,
    'warning'
  ),
  birthDateAgrees: invariant(
    'cn-pat-7',
    'birthDate agrees with the birth date in the resident identity number',
    `identifier.where(${IS_RESIDENT_SYSTEM} and value.matches(${EIGHTEEN})).all(%resource.birthDate.empty() or %resource.birthDate.toString().length() != 10 or %resource.birthDate.toString() = value.substring(6, 4) + '-' + value.substring(10, 2) + '-' + value.substring(12, 2))`,
    'warning'
  ),
  sexAgrees: invariant(
    'cn-pat-8',
    'The national sex code agrees with gender: 1 male, 2 female, 0 and 9 unknown',
    `gender.extension('${EXT.sex}').value.ofType(Coding).all((code = '1' implies %resource.gender = 'male') and (code = '2' implies %resource.gender = 'female') and ((code = '0' or code = '9') implies %resource.gender = 'unknown'))`
  ),
};

function identifierSlice(name: string, system: string, short: string, max: string, valueRules: DiffElement['constraint'] = undefined): DiffElement[] {
  const id = `Patient.identifier:${name}`;
  return [
    { id, sliceName: name, short, min: 0, max, mustSupport: true },
    { id: `${id}.system`, min: 1, fixedUri: system },
    { id: `${id}.value`, min: 1, ...(valueRules && { constraint: valueRules }) },
  ];
}

function extensionSlice(path: string, name: string, url: string): DiffElement {
  return { id: `${path}:${name}`, sliceName: name, min: 0, max: '1', type: [{ code: 'Extension', profile: [url] }], mustSupport: true };
}

export function patientProfile(provinces: string[]): StructureDefinition {
  const i = PATIENT_INVARIANTS;
  const residentRules = [
    i.format,
    i.checkDigit,
    i.birthDate,
    invariant('cn-pat-4', 'A resident identity number begins with the code of a province-level division', provinceExpression(provinces)),
  ];
  return structureDefinition({
    id: 'cn-patient',
    name: 'CNPatient',
    title: 'CN Patient',
    description:
      'A patient as recorded in China: identifiers in the national namespaces (resident identity number checked per GB 11643), ' +
      'gender with the GB/T 2261.1 code, ethnic group (GB 3304), nationality (GB/T 2659), education (GB/T 4658), marital status ' +
      'with a GB/T 2261.2 coding and addresses with their GB/T 2260 division code.',
    type: 'Patient',
    elements: [
      { id: 'Patient', constraint: [i.parity, i.birthDateAgrees, i.sexAgrees] },
      extensionSlice('Patient.extension', 'ethnicity', EXT.ethnicity),
      extensionSlice('Patient.extension', 'nationality', EXT.nationality),
      extensionSlice('Patient.extension', 'education', EXT.education),
      {
        id: 'Patient.identifier',
        slicing: slicedBy('system', 'By namespace: the national identifier OIDs'),
        comment:
          'Other identity documents (passport, travel permits, ...) are identifiers whose type has a CV02.01.101 coding; they have ' +
          'no national namespace, so they are not a slice.',
        constraint: [i.documentType],
        mustSupport: true,
      },
      { id: 'Patient.identifier.type', binding: { strength: 'extensible', description: 'Identity document types and HL7 identifier types', valueSet: vsUrl('cn-identifier-type') } },
      ...identifierSlice('idCard', ID.idCard, '居民身份证号 (resident identity number)', '1', residentRules),
      // The same number under the aliases the NamingSystem cn-id-id-card lists: the same rules.
      ...identifierSlice('idCardCommunity', oid(ID_CARD_ALIASES.idCardCommunity.oid), '居民身份证号 under the HL7 China community OID (alias of idCard)', '1', residentRules),
      ...identifierSlice('socialSecurityCard', oid(ID_CARD_ALIASES.socialSecurityCard.oid), '社会保障卡号 = 居民身份证号 (HL7 China community OID, alias of idCard)', '1', residentRules),
      ...identifierSlice('healthCard', ID.healthCard, '健康卡号 (health card; the electronic health card is told apart by type)', '*'),
      ...identifierSlice('insuranceCard', ID.insuranceCard, '医保卡号 (medical-insurance card)', '*'),
      ...identifierSlice('healthRecord', ID.healthRecord, '健康档案编号 (health-record number)', '1'),
      ...identifierSlice('mrn', ID.mrn, '病案号 (medical record number)', '*'),
      { id: 'Patient.gender', min: 1, mustSupport: true },
      extensionSlice('Patient.gender.extension', 'nationalSex', EXT.sex),
      { id: 'Patient.address', mustSupport: true },
      extensionSlice('Patient.address.extension', 'division', EXT.division),
      { id: 'Patient.maritalStatus', mustSupport: true },
      { id: 'Patient.maritalStatus.coding', min: 1, slicing: slicedBy('system', 'The national coding, next to any HL7 one') },
      {
        id: 'Patient.maritalStatus.coding:national',
        sliceName: 'national',
        short: '婚姻状况 (GB/T 2261.2)',
        min: 1,
        max: '1',
        binding: { strength: 'required', description: 'GB/T 2261.2 marital status', valueSet: vsUrl('gb-t-2261-2') },
      },
      { id: 'Patient.maritalStatus.coding:national.system', min: 1, fixedUri: CS.marital },
      { id: 'Patient.maritalStatus.coding:national.code', min: 1 },
    ],
  });
}
