/**
 * The report's chart as plain SVG: per workload, throughput next to the raw-PostgreSQL
 * baseline (left), and p50/p95/p99 latency on a log scale (right).
 */
import type { BenchReport, Measurement } from './report';

const ROW = 30;
const LABEL = 250;
const PANEL = 330;
const GAP = 40;
const TOP = 70;

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const num = (x: number) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x >= 10 ? 1 : 2));

function label(m: Measurement): string {
  const name = { ingest: 'Ingest', read: 'Read by id', crud: 'CRUD mix', search: 'Search mix' }[m.workload];
  return `${name} · ${m.config} · ${m.scale.toLocaleString('en-US')} pts`;
}

function openFigure(report: BenchReport, m: Measurement): number | undefined {
  const open = report.measurements.filter((o) => o.workload === m.workload && o.config === 'open' && o.scale <= m.scale);
  return open[open.length - 1]?.server.unitsPerSecond;
}

export function renderChart(report: BenchReport): string {
  const rows = report.measurements;
  const height = TOP + rows.length * ROW + 50;
  const width = LABEL + PANEL * 2 + GAP + 90;
  const latencyX = LABEL + PANEL + GAP;
  const maxLatency = Math.max(10, ...rows.map((m) => m.server.latency.p99));
  const minLog = Math.log10(0.5);
  const maxLog = Math.log10(maxLatency * 1.2);
  const lx = (ms: number) => ((Math.log10(Math.max(ms, 0.5)) - minLog) / (maxLog - minLog)) * (PANEL - 60);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(
    `<text x="10" y="22" font-size="16" font-weight="bold">FHIR server benchmark, ${esc(report.startedAt.slice(0, 10))} (${esc(report.options.profile)}, ${report.options.concurrency} clients, ${report.options.workers} workers)</text>`
  );
  out.push(`<text x="${LABEL}" y="${TOP - 20}" font-weight="bold">Throughput (req/s; resources/s for ingest)</text>`);
  out.push(`<rect x="${LABEL}" y="${TOP - 14}" width="10" height="10" fill="#2b6cb0"/><text x="${LABEL + 14}" y="${TOP - 5}">FHIR server</text>`);
  out.push(`<rect x="${LABEL + 100}" y="${TOP - 14}" width="10" height="10" fill="#a0aec0"/><text x="${LABEL + 114}" y="${TOP - 5}">raw PostgreSQL baseline</text>`);
  out.push(`<text x="${latencyX}" y="${TOP - 20}" font-weight="bold">Latency, ms (log scale)</text>`);
  const legend = [
    ['p50', '#2f855a'],
    ['p95', '#dd6b20'],
    ['p99', '#fbd38d'],
  ];
  legend.forEach(([name, color], i) => {
    out.push(`<rect x="${latencyX + i * 60}" y="${TOP - 14}" width="10" height="10" fill="${color}"/><text x="${latencyX + i * 60 + 14}" y="${TOP - 5}">${name}</text>`);
  });
  rows.forEach((m, i) => {
    const y = TOP + i * ROW;
    if (i % 2 === 0) out.push(`<rect x="0" y="${y - 2}" width="${width}" height="${ROW}" fill="#f7fafc"/>`);
    out.push(`<text x="${LABEL - 8}" y="${y + 17}" text-anchor="end">${esc(label(m))}</text>`);
    const server = m.server.unitsPerSecond;
    const raw = m.baseline?.unitsPerSecond;
    // Rows without a baseline (token, token+audit) are drawn against the open server's figure.
    const open = raw === undefined ? openFigure(report, m) : undefined;
    const scale = (PANEL - 80) / Math.max(server, raw ?? 0, open ?? 0, 1);
    const note = m.ratio !== undefined ? ` (${Math.round(m.ratio * 100)}%)` : open ? ` (${Math.round((server / open) * 100)}% of open)` : '';
    out.push(`<rect x="${LABEL}" y="${y + 2}" width="${Math.max(1, server * scale)}" height="${raw !== undefined ? 11 : 22}" fill="${raw === undefined ? '#63b3ed' : '#2b6cb0'}"/>`);
    out.push(`<text x="${LABEL + server * scale + 4}" y="${y + (raw !== undefined ? 12 : 17)}" font-size="10">${num(server)}${note}</text>`);
    if (raw !== undefined) {
      out.push(`<rect x="${LABEL}" y="${y + 14}" width="${Math.max(1, raw * scale)}" height="11" fill="#a0aec0"/>`);
      out.push(`<text x="${LABEL + raw * scale + 4}" y="${y + 24}" font-size="10">${num(raw)}</text>`);
    }
    const { p50, p95, p99 } = m.server.latency;
    out.push(`<rect x="${latencyX}" y="${y + 3}" width="${lx(p99)}" height="20" fill="#fbd38d"/>`);
    out.push(`<rect x="${latencyX}" y="${y + 3}" width="${lx(p95)}" height="20" fill="#dd6b20"/>`);
    out.push(`<rect x="${latencyX}" y="${y + 3}" width="${lx(p50)}" height="20" fill="#2f855a"/>`);
    out.push(`<text x="${latencyX + lx(p99) + 4}" y="${y + 17}" font-size="10">${num(p50)} / ${num(p95)} / ${num(p99)}</text>`);
  });
  const axisY = TOP + rows.length * ROW + 6;
  for (const tick of [1, 10, 100, 1000, 10000]) {
    if (Math.log10(tick) > maxLog) break;
    const x = latencyX + lx(tick);
    out.push(`<line x1="${x}" y1="${TOP - 2}" x2="${x}" y2="${axisY}" stroke="#cbd5e0" stroke-dasharray="2,3"/>`);
    out.push(`<text x="${x}" y="${axisY + 14}" text-anchor="middle" font-size="10">${tick}</text>`);
  }
  out.push(`<text x="${LABEL}" y="${axisY + 14}" font-size="10">bars scaled per row; % = server / baseline;</text>`);
  out.push(`<text x="${LABEL}" y="${axisY + 27}" font-size="10">light blue: with token (and audit), vs the open server</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}
