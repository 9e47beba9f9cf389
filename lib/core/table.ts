/**
 * Docker-style tables on stdout (`calf images`, `calf network ls`).
 * @module
 */

/** Print rows as columns padded to their widest cell, three spaces apart; the first row is the header. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const row of rows) process.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c]!)).join('   ').trimEnd()}\n`);
}
