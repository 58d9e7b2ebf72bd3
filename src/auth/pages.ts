/**
 * The pages people see during an authorization: login, consent (with the patient picker)
 * and errors. Plain server-rendered HTML forms: no JavaScript, every control labelled, the
 * natural tab order, visible focus, and the app's name and each requested permission
 * spelled out in words.
 */
import { describeScope } from '../access/scopes';

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f4f6f8;color:#1b1f23;line-height:1.5}
main{max-width:40rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;box-shadow:0 1px 4px rgba(0,0,0,.15)}
h1{font-size:1.4rem;margin-top:0}label{display:block;font-weight:600;margin-top:1rem}
input[type=text],input[type=password],input[type=search]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem;border:1px solid #6a737d;border-radius:4px}
button{font-size:1rem;padding:.55rem 1.2rem;border-radius:4px;border:1px solid #0b5394;background:#0b5394;color:#fff;cursor:pointer;margin:1rem .5rem 0 0}
button.secondary{background:#fff;color:#0b5394}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
fieldset{border:1px solid #d1d5da;border-radius:4px;margin-top:1rem}legend{font-weight:600}
.scope label,.patient label{font-weight:normal;display:inline;margin:0}.scope,.patient{margin:.4rem 0}
code{font-size:.85em;color:#57606a}.error{color:#b00020;font-weight:600}.app{font-weight:700}
`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p role="alert" class="error">${escapeHtml(message)}</p>`);
}

export interface LoginPage {
  action: string;
  requestId: string;
  csrf: string;
  appName: string;
  username?: string;
  error?: string;
}

export function loginPage(page: LoginPage): string {
  return layout(
    'Sign in',
    `<h1>Sign in to continue to <span class="app">${escapeHtml(page.appName)}</span></h1>
${page.error ? `<p role="alert" class="error" id="login-error">${escapeHtml(page.error)}</p>` : ''}
<form method="post" action="${escapeHtml(page.action)}">
  <input type="hidden" name="request" value="${escapeHtml(page.requestId)}">
  <input type="hidden" name="csrf" value="${escapeHtml(page.csrf)}">
  <label for="username">User name</label>
  <input type="text" id="username" name="username" autocomplete="username" required autofocus value="${escapeHtml(page.username)}"${page.error ? ' aria-describedby="login-error"' : ''}>
  <label for="password">Password</label>
  <input type="password" id="password" name="password" autocomplete="current-password" required>
  <button type="submit">Sign in</button>
</form>`
  );
}

export interface PatientChoice {
  id: string;
  name: string;
  details: string;
}

export interface ConsentPage {
  action: string;
  pickerAction: string;
  logoutAction: string;
  requestId: string;
  csrf: string;
  appName: string;
  userName: string;
  scopes: string[];
  /** The patient the launch is about, when already known (EHR launch, patient user). */
  patientLabel?: string;
  /** Shown when a practitioner must pick the patient. */
  picker?: { query: string; results: PatientChoice[] };
  error?: string;
}

export function consentPage(page: ConsentPage): string {
  const scopes = page.scopes
    .map(
      (scope, i) => `<div class="scope"><input type="checkbox" id="scope-${i}" name="scope" value="${escapeHtml(scope)}" checked>
  <label for="scope-${i}">${escapeHtml(describeScope(scope))} <code>${escapeHtml(scope)}</code></label></div>`
    )
    .join('\n');
  let patient = '';
  if (page.patientLabel) {
    patient = `<p>Patient: <strong>${escapeHtml(page.patientLabel)}</strong></p>`;
  } else if (page.picker) {
    const results = page.picker.results.length
      ? page.picker.results
          .map(
            (p, i) => `<div class="patient"><input type="radio" id="patient-${i}" name="patient" value="${escapeHtml(p.id)}" required${page.picker!.results.length === 1 ? ' checked' : ''}>
  <label for="patient-${i}">${escapeHtml(p.name)} <span>${escapeHtml(p.details)}</span></label></div>`
          )
          .join('\n')
      : `<p>${page.picker.query ? 'No patient matches this name.' : 'Search for the patient by name.'}</p>`;
    patient = `<fieldset><legend>Choose the patient</legend>${results}</fieldset>`;
  }
  const picker = page.picker
    ? `<form method="get" action="${escapeHtml(page.pickerAction)}" role="search">
  <input type="hidden" name="request" value="${escapeHtml(page.requestId)}">
  <label for="patient-search">Find a patient by name</label>
  <input type="search" id="patient-search" name="patient_search" value="${escapeHtml(page.picker.query)}">
  <button type="submit" class="secondary">Search</button>
</form>`
    : '';
  return layout(
    `Allow ${page.appName}?`,
    `<h1><span class="app">${escapeHtml(page.appName)}</span> asks for access</h1>
<p>Signed in as <strong>${escapeHtml(page.userName)}</strong>.</p>
${page.error ? `<p role="alert" class="error">${escapeHtml(page.error)}</p>` : ''}
${picker}
<form method="post" action="${escapeHtml(page.action)}">
  <input type="hidden" name="request" value="${escapeHtml(page.requestId)}">
  <input type="hidden" name="csrf" value="${escapeHtml(page.csrf)}">
  ${patient}
  <fieldset><legend>The app asks to</legend>
${scopes}
  </fieldset>
  <p>Unchecked permissions are not granted.</p>
  <button type="submit" name="decision" value="allow">Allow</button>
  <button type="submit" name="decision" value="deny" class="secondary" formnovalidate>Deny</button>
</form>
<form method="post" action="${escapeHtml(page.logoutAction)}">
  <input type="hidden" name="request" value="${escapeHtml(page.requestId)}">
  <input type="hidden" name="csrf" value="${escapeHtml(page.csrf)}">
  <button type="submit" class="secondary">Not you? Sign out</button>
</form>`
  );
}
