// bench/RESULTS.md: the command, the machine, one row per measurement with ratios and targets, details.
import type { MachineFacts } from './machine.ts';

export interface Row {
  readonly name: string;
  readonly unit: string;
  readonly ocimirror: number;
  readonly peer?: number;
  readonly nginx?: number;
  /** Pulling straight from the upstream registry (the cold-pull reference). */
  readonly direct?: number;
  /** Ratios computed otherwise than from the two columns (e.g. median of paired ratios). */
  readonly ratios?: { readonly peer?: number; readonly nginx?: number };
  readonly target: string;
  /** undefined: no target for this row. */
  readonly met?: boolean;
  /** Where the difference to the reference goes, as far as it was measured (the "Where the gap goes" section). */
  readonly gap?: string;
}

export interface Report {
  readonly command: string;
  readonly startedAt: Date;
  readonly durationS: number;
  readonly machine: MachineFacts;
  readonly setup: readonly string[];
  readonly rows: readonly Row[];
  readonly details: readonly string[];
}

export function renderReport(report: Report): string {
  const { machine } = report;
  const lines = [
    '# ocimirror benchmark results',
    '',
    `Command: \`${report.command}\` (written by bench/run.ts; do not edit by hand)`,
    '',
    `Date: ${report.startedAt.toISOString()}, the whole run took ${report.durationS.toFixed(0)} s.`,
    '',
    '## Machine',
    '',
    `- nproc: ${machine.nproc}; CPU: ${machine.cpu}; memory: ${machine.memory}; kernel: ${machine.kernel}`,
    `- node (bench and ocimirror): ${machine.node}`,
    ...Object.entries(machine.versions).map(([name, version]) => `- ${name}: ${version}`),
    '',
    '## Setup',
    '',
    ...report.setup.map((line) => `- ${line}`),
    '',
    '## Results',
    '',
    'MB = 10^6 bytes. Ratios are ocimirror divided by the other column; for the throughput rows, the median of the ratios within each repetition (see Details).',
    '',
    '| Measurement | ocimirror | peer (docker-registry; proxy mode except in the push rows) | nginx | direct from upstream | ocimirror/peer | ocimirror/nginx | ocimirror/direct | Target | Met |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | :---: |',
    ...report.rows.map((row) =>
      [
        `${row.name} (${row.unit})`,
        formatValue(row.ocimirror),
        formatValue(row.peer),
        formatValue(row.nginx),
        formatValue(row.direct),
        row.ratios?.peer !== undefined ? formatRatio(row.ratios.peer) : ratio(row.ocimirror, row.peer),
        row.ratios?.nginx !== undefined ? formatRatio(row.ratios.nginx) : ratio(row.ocimirror, row.nginx),
        ratio(row.ocimirror, row.direct),
        row.target,
        row.met === undefined ? '—' : row.met ? 'yes' : '**no**',
      ].join(' | '),
    ).map((line) => `| ${line} |`),
    '',
    '## Where the gap goes',
    '',
    ...report.rows.filter((row) => row.gap !== undefined).flatMap((row) => [`- **${row.name}**: ${row.gap}`]),
    '',
    '## Details',
    '',
    ...report.details,
    '',
  ];
  return lines.join('\n');
}

function formatValue(value: number | undefined): string {
  if (value === undefined) return '—';
  if (Number.isInteger(value)) return String(value);
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

function ratio(a: number, b: number | undefined): string {
  if (b === undefined || b === 0) return '—';
  return formatRatio(a / b);
}

function formatRatio(r: number): string {
  return r >= 100 ? r.toFixed(0) : r.toFixed(2);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
