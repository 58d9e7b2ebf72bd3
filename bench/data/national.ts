/**
 * National identifiers and code tables the generated records use (see
 * ../shared/reference/national-standards.md): identifier namespace OIDs, the resident
 * identity number of GB 11643-1999 with its ISO 7064 MOD 11-2 check character, and small
 * samples of the GB/T code tables.
 */

export const OID = {
  healthRecord: 'urn:oid:2.16.156.10011.1.2',
  residentId: 'urn:oid:2.16.156.10011.1.3',
  clinician: 'urn:oid:2.16.156.10011.1.4',
  institution: 'urn:oid:2.16.156.10011.1.5',
  outpatientNumber: 'urn:oid:2.16.156.10011.1.11',
  inpatientNumber: 'urn:oid:2.16.156.10011.1.12',
  medicalRecordNumber: 'urn:oid:2.16.156.10011.1.13',
  specimenNumber: 'urn:oid:2.16.156.10011.1.14',
  healthCard: 'urn:oid:2.16.156.10011.1.19',
  imagingReportNumber: 'urn:oid:2.16.156.10011.1.32',
  labReportNumber: 'urn:oid:2.16.156.10011.1.33',
  consentFormNumber: 'urn:oid:2.16.156.10011.1.34',
} as const;

export const CODE_SYSTEM = {
  sex: 'urn:oid:2.16.156.10011.2.3.3.4',
  maritalStatus: 'urn:oid:2.16.156.10011.2.3.3.5',
  ethnicity: 'urn:oid:2.16.156.10011.2.3.3.3',
  division: 'urn:oid:2.16.156.10011.2.3.3.2',
  icd10: 'urn:oid:2.16.156.10011.2.3.3.11',
  patientType: 'urn:oid:2.16.156.10011.2.3.1.271',
} as const;

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';

/** The check character of the first 17 digits of a resident identity number (GB 11643-1999). */
export function residentIdCheckChar(first17: string): string {
  if (!/^\d{17}$/.test(first17)) throw new Error(`A resident ID body is 17 digits, got "${first17}"`);
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i];
  return CHECK[sum % 11];
}

/** True when an 18-character resident identity number has the right check character. */
export function isValidResidentId(id: string): boolean {
  return /^\d{17}[\dX]$/.test(id) && residentIdCheckChar(id.slice(0, 17)) === id[17];
}

/** County-level divisions (GB/T 2260) used for addresses and the first six digits of ID numbers. */
export const DIVISIONS: readonly { code: string; province: string; city: string; district: string; postalCode: string }[] = [
  { code: '110105', province: '北京市', city: '北京市', district: '朝阳区', postalCode: '100020' },
  { code: '110108', province: '北京市', city: '北京市', district: '海淀区', postalCode: '100080' },
  { code: '310115', province: '上海市', city: '上海市', district: '浦东新区', postalCode: '200120' },
  { code: '310104', province: '上海市', city: '上海市', district: '徐汇区', postalCode: '200030' },
  { code: '440305', province: '广东省', city: '深圳市', district: '南山区', postalCode: '518052' },
  { code: '440106', province: '广东省', city: '广州市', district: '天河区', postalCode: '510630' },
  { code: '510107', province: '四川省', city: '成都市', district: '武侯区', postalCode: '610041' },
  { code: '330106', province: '浙江省', city: '杭州市', district: '西湖区', postalCode: '310013' },
  { code: '420111', province: '湖北省', city: '武汉市', district: '洪山区', postalCode: '430070' },
  { code: '610113', province: '陕西省', city: '西安市', district: '雁塔区', postalCode: '710061' },
  { code: '320106', province: '江苏省', city: '南京市', district: '鼓楼区', postalCode: '210009' },
  { code: '370202', province: '山东省', city: '青岛市', district: '市南区', postalCode: '266001' },
  { code: '500103', province: '重庆市', city: '重庆市', district: '渝中区', postalCode: '400010' },
  { code: '120101', province: '天津市', city: '天津市', district: '和平区', postalCode: '300041' },
  { code: '210102', province: '辽宁省', city: '沈阳市', district: '和平区', postalCode: '110001' },
  { code: '430104', province: '湖南省', city: '长沙市', district: '岳麓区', postalCode: '410006' },
];

export const FAMILY_NAMES = [
  '王', '李', '张', '刘', '陈', '杨', '黄', '赵', '吴', '周', '徐', '孙', '马', '朱', '胡', '郭', '何', '高', '林', '罗',
  '郑', '梁', '谢', '宋', '唐', '许', '韩', '冯', '邓', '曹', '彭', '曾', '肖', '田', '董', '袁', '潘', '于', '蒋', '蔡',
  '欧阳', '司马',
] as const;

export const GIVEN_CHARS = [
  '伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '军', '洋', '勇', '艳', '杰', '娟', '涛', '明', '超', '秀', '霞', '平',
  '刚', '桂', '英', '华', '建', '国', '文', '玉', '兰', '红', '志', '春', '海', '晓', '婷', '宇', '浩', '欣', '雪', '琳',
] as const;

/** GB 3304 ethnic groups, weighted towards Han as the population is. */
export const ETHNICITIES: readonly { code: string; display: string; weight: number }[] = [
  { code: '01', display: '汉族', weight: 91 },
  { code: '08', display: '壮族', weight: 2 },
  { code: '03', display: '回族', weight: 1 },
  { code: '11', display: '满族', weight: 1 },
  { code: '05', display: '维吾尔族', weight: 1 },
  { code: '06', display: '苗族', weight: 1 },
  { code: '07', display: '彝族', weight: 1 },
  { code: '15', display: '土家族', weight: 1 },
  { code: '04', display: '藏族', weight: 1 },
];

/** GB/T 2261.2 marital status with the v3 MaritalStatus code it maps to. */
export const MARITAL_STATUS: readonly { code: string; display: string; v3: string; v3display: string }[] = [
  { code: '10', display: '未婚', v3: 'S', v3display: 'Never Married' },
  { code: '20', display: '已婚', v3: 'M', v3display: 'Married' },
  { code: '30', display: '丧偶', v3: 'W', v3display: 'Widowed' },
  { code: '40', display: '离婚', v3: 'D', v3display: 'Divorced' },
];

/** Diagnoses (ICD-10, national clinical edition 2.0 codes) of outpatient and inpatient encounters. */
export const DIAGNOSES: readonly { code: string; display: string }[] = [
  { code: 'I10.x00x002', display: '高血压' },
  { code: 'E11.900', display: '2型糖尿病' },
  { code: 'J06.900', display: '急性上呼吸道感染' },
  { code: 'J18.900', display: '肺炎' },
  { code: 'K29.700', display: '胃炎' },
  { code: 'M54.500', display: '腰痛' },
  { code: 'I25.100', display: '动脉粥样硬化性心脏病' },
  { code: 'E78.500', display: '高脂血症' },
  { code: 'J45.900x001', display: '支气管哮喘' },
  { code: 'N39.000', display: '泌尿道感染' },
];
