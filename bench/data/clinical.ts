/**
 * The clinical content of generated records: vital signs, laboratory panels and imaging
 * procedures with their LOINC codes, UCUM units, typical values and reference ranges.
 */

export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const REPORT_CATEGORY = 'http://terminology.hl7.org/CodeSystem/v2-0074';
export const DICOM_DCM = 'http://dicom.nema.org/resources/ontology/DCM';

export interface Analyte {
  code: string;
  display: string;
  unit: string;
  mean: number;
  sd: number;
  low: number;
  high: number;
  decimals: number;
}

export interface LabPanel {
  code: string;
  display: string;
  analytes: Analyte[];
}

export const LAB_PANELS: readonly LabPanel[] = [
  {
    code: '58410-2',
    display: '血常规 (CBC panel - Blood by Automated count)',
    analytes: [
      { code: '6690-2', display: '白细胞计数', unit: '10*9/L', mean: 6.5, sd: 1.8, low: 3.5, high: 9.5, decimals: 1 },
      { code: '789-8', display: '红细胞计数', unit: '10*12/L', mean: 4.7, sd: 0.5, low: 4.3, high: 5.8, decimals: 2 },
      { code: '718-7', display: '血红蛋白', unit: 'g/L', mean: 140, sd: 15, low: 130, high: 175, decimals: 0 },
      { code: '4544-3', display: '红细胞压积', unit: '%', mean: 42, sd: 4, low: 40, high: 50, decimals: 1 },
      { code: '777-3', display: '血小板计数', unit: '10*9/L', mean: 230, sd: 60, low: 125, high: 350, decimals: 0 },
    ],
  },
  {
    code: '51990-0',
    display: '基础代谢 (Basic metabolic panel - Blood)',
    analytes: [
      { code: '2345-7', display: '葡萄糖', unit: 'mmol/L', mean: 5.6, sd: 1.2, low: 3.9, high: 6.1, decimals: 1 },
      { code: '2160-0', display: '肌酐', unit: 'umol/L', mean: 80, sd: 20, low: 57, high: 111, decimals: 0 },
      { code: '3094-0', display: '尿素氮', unit: 'mmol/L', mean: 5.2, sd: 1.4, low: 3.1, high: 8.0, decimals: 1 },
      { code: '2951-2', display: '钠', unit: 'mmol/L', mean: 140, sd: 3, low: 137, high: 147, decimals: 0 },
      { code: '2823-3', display: '钾', unit: 'mmol/L', mean: 4.2, sd: 0.4, low: 3.5, high: 5.3, decimals: 1 },
      { code: '2075-0', display: '氯', unit: 'mmol/L', mean: 102, sd: 3, low: 99, high: 110, decimals: 0 },
    ],
  },
  {
    code: '57698-3',
    display: '血脂 (Lipid panel with direct LDL - Serum or Plasma)',
    analytes: [
      { code: '2093-3', display: '总胆固醇', unit: 'mmol/L', mean: 4.9, sd: 0.9, low: 2.8, high: 5.2, decimals: 2 },
      { code: '2571-8', display: '甘油三酯', unit: 'mmol/L', mean: 1.5, sd: 0.7, low: 0.56, high: 1.7, decimals: 2 },
      { code: '2085-9', display: '高密度脂蛋白胆固醇', unit: 'mmol/L', mean: 1.3, sd: 0.3, low: 1.0, high: 1.9, decimals: 2 },
      { code: '18262-6', display: '低密度脂蛋白胆固醇', unit: 'mmol/L', mean: 2.9, sd: 0.8, low: 0, high: 3.4, decimals: 2 },
    ],
  },
  {
    code: '24325-3',
    display: '肝功能 (Hepatic function panel - Serum or Plasma)',
    analytes: [
      { code: '1742-6', display: '丙氨酸氨基转移酶', unit: 'U/L', mean: 28, sd: 12, low: 9, high: 50, decimals: 0 },
      { code: '1920-8', display: '天门冬氨酸氨基转移酶', unit: 'U/L', mean: 25, sd: 9, low: 15, high: 40, decimals: 0 },
      { code: '1975-2', display: '总胆红素', unit: 'umol/L', mean: 12, sd: 5, low: 0, high: 26, decimals: 1 },
      { code: '1751-7', display: '白蛋白', unit: 'g/L', mean: 44, sd: 4, low: 40, high: 55, decimals: 1 },
    ],
  },
];

export interface Imaging {
  code: string;
  display: string;
  modality: string;
  modalityDisplay: string;
  bodySite: { code: string; display: string };
  series: number;
  conclusions: readonly string[];
}

export const IMAGING: readonly Imaging[] = [
  {
    code: '36643-5',
    display: '胸部X线检查 (XR Chest 2 Views)',
    modality: 'DX',
    modalityDisplay: 'Digital Radiography',
    bodySite: { code: '51185008', display: 'Thoracic structure' },
    series: 1,
    conclusions: ['双肺未见明显异常。', '双肺纹理增粗。', '右下肺少许渗出影，考虑炎症。'],
  },
  {
    code: '24627-2',
    display: '胸部CT (CT Chest)',
    modality: 'CT',
    modalityDisplay: 'Computed Tomography',
    bodySite: { code: '51185008', display: 'Thoracic structure' },
    series: 3,
    conclusions: ['胸部CT平扫未见明显异常。', '左上肺微小结节，建议随访。', '双肺散在慢性炎症。'],
  },
  {
    code: '24558-9',
    display: '腹部超声 (US Abdomen)',
    modality: 'US',
    modalityDisplay: 'Ultrasound',
    bodySite: { code: '818983003', display: 'Abdomen' },
    series: 1,
    conclusions: ['肝胆胰脾未见明显异常。', '脂肪肝（轻度）。', '胆囊息肉样病变。'],
  },
  {
    code: '24590-2',
    display: '头颅MRI (MR Brain)',
    modality: 'MR',
    modalityDisplay: 'Magnetic Resonance',
    bodySite: { code: '12738006', display: 'Brain structure' },
    series: 4,
    conclusions: ['头颅MRI平扫未见明显异常。', '双侧额叶少许缺血灶。'],
  },
];

export const VITALS = {
  bloodPressure: { code: '85354-9', display: 'Blood pressure panel with all children optional' },
  systolic: { code: '8480-6', display: 'Systolic blood pressure' },
  diastolic: { code: '8462-4', display: 'Diastolic blood pressure' },
  heartRate: { code: '8867-4', display: 'Heart rate' },
  temperature: { code: '8310-5', display: 'Body temperature' },
  weight: { code: '29463-7', display: 'Body weight' },
} as const;
