import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { README_PATH, TABLES, tableIn, type TableName } from '../../scripts/registry-tables.js';

/**
 * SPEC §12 "Stable words are typed": the README lists the audit actions and the SSO failure
 * reasons from their registries. A word added to a registry without the README (or the README
 * edited by hand) fails here; `npx tsx scripts/registry-tables.ts --write` brings them together.
 */
describe('README tables of stable words match their registries', () => {
  const readme = readFileSync(README_PATH, 'utf8');
  for (const name of Object.keys(TABLES) as TableName[]) {
    it(`${name}: the README table is the registry's`, () => {
      const found = tableIn(readme, name);
      expect(found, `README has no ${name} table markers`).not.toBeNull();
      expect(found).toBe(TABLES[name]());
    });
  }
});
