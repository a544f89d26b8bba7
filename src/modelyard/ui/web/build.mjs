// Copies the console's npm dependencies into ../static/vendor, which the Python package serves.
// The console itself is plain ES modules (../static/js): nothing else needs building.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor");
const files = [
  ["uplot/dist/uPlot.iife.min.js", "uPlot.iife.min.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
];
mkdirSync(out, { recursive: true });
for (const [src, dst] of files) {
  copyFileSync(join(here, "node_modules", src), join(out, dst));
}
console.log(`copied ${files.length} files into ${out}`);
