/**
 * A grouped bar chart of ratios to the kernel, as a standalone SVG. Written by hand: one chart of bars and a 1.0×
 * line needs no plotting library.
 */
const COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1'];

export function chartSvg(paths: readonly string[], groups: readonly { label: string; ratios: Record<string, number> }[]): string {
  const rowH = 18 * paths.length + 14;
  const left = 300;
  const width = 760;
  const scaleMax = Math.max(1.5, ...groups.flatMap((g) => paths.map((p) => g.ratios[p] ?? 0)).filter(Number.isFinite));
  const x = (r: number): number => left + (Math.min(r, scaleMax) / scaleMax) * (width - left - 60);
  const height = 40 + groups.length * rowH + 20;
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<text x="10" y="18" font-size="13" font-weight="bold">Ratio to the kernel's VXLAN (1.0× = kernel, same run)</text>`,
  ];
  paths.forEach((p, i) => parts.push(`<rect x="${left + i * 90}" y="26" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/><text x="${left + i * 90 + 14}" y="35">${esc(p)}</text>`));
  groups.forEach((g, gi) => {
    const y0 = 44 + gi * rowH;
    parts.push(`<text x="10" y="${y0 + rowH / 2}">${esc(g.label)}</text>`);
    paths.forEach((p, i) => {
      const r = g.ratios[p] ?? NaN;
      if (!Number.isFinite(r)) return;
      parts.push(`<rect x="${left}" y="${y0 + i * 18}" width="${(x(r) - left).toFixed(1)}" height="14" fill="${COLORS[i % COLORS.length]}"/>`);
      parts.push(`<text x="${(x(r) + 4).toFixed(1)}" y="${y0 + i * 18 + 11}">${r.toFixed(2)}×</text>`);
    });
  });
  parts.push(`<line x1="${x(1)}" y1="40" x2="${x(1)}" y2="${height - 10}" stroke="#333" stroke-dasharray="4 3"/>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
