import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../server/app.ts';

// The README's embed snippet must name the widget this checkout builds, with its real SRI hash.
describe('README embed snippet', () => {
  it('matches the built widget manifest', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'public/build/manifest.json'), 'utf8'));
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain(`/widget/${manifest.version}/widget.js`);
    expect(readme).toContain(`integrity="${manifest.files['widget.js'].sri}"`);
  });
});
