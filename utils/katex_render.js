// Typeset every formula of one site build in a single process.
//
// stdin:  a JSON array of {"tex": string, "display": bool}
// stdout: a JSON array, in the same order, of {"html": string} or {"error": string}
//
// The Python side (utils/katex.py) owns file/line bookkeeping; this script only typesets.
// The only trusted command is \htmlClass with the classes the build itself writes to mark a
// page's notation symbols (utils/notation.py); everything else that needs trust is refused.
"use strict";
const katex = require("katex");
const NOTATION_CLASS = /^nsym nsym-\d+( nsym-t)?$/;
const trust = (context) => context.command === "\\htmlClass" && NOTATION_CLASS.test(context.class || "");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const formulas = JSON.parse(input);
  const results = formulas.map(({ tex, display }) => {
    try {
      return {
        html: katex.renderToString(tex, {
          displayMode: display,
          throwOnError: true,
          output: "htmlAndMathml",
          strict: "ignore",
          trust,
        }),
      };
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
