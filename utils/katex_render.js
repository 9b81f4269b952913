// Typeset every formula of one site build in a single process.
//
// stdin:  a JSON array of {"tex": string, "display": bool, "original": string or null}
// stdout: a JSON array, in the same order, of {"html": string} or {"error": string}
//
// The Python side (utils/katex.py) owns file/line bookkeeping; this script only typesets. `tex`
// may be a formula the notation pass rewrote (`original` is then the TeX as written): its symbols
// are wrapped in \htmlData{sym=..., vars=...}, the one command trusted here, with those two keys
// only. KaTeX's annotation (what copying the formula reads) gets the TeX as written back.
"use strict";
const katex = require("katex");
const NOTATION_KEYS = new Set(["data-sym", "data-vars"]);
const trust = (context) => context.command === "\\htmlData"
  && Object.keys(context.attributes || {}).every((key) => NOTATION_KEYS.has(key));
const annotation = (tex) => '<annotation encoding="application/x-tex">' + tex
  .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
  .replace(/"/g, "&quot;").replace(/'/g, "&#x27;") + "</annotation>";

function render({ tex, display, original }) {
  const html = katex.renderToString(tex, {
    displayMode: display, throwOnError: true, output: "htmlAndMathml", strict: "ignore", trust,
  });
  if (original == null || original === tex) return html;
  const parts = html.split(annotation(tex));
  if (parts.length !== 2) throw new Error("KaTeX's annotation of a marked formula was not found");
  return parts.join(annotation(original));
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const results = JSON.parse(input).map((formula) => {
    try {
      return { html: render(formula) };
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
