// Typeset every formula of one site build in a single process.
//
// stdin:  a JSON array of {"tex": string, "display": bool}
// stdout: a JSON array, in the same order, of {"html": string} or {"error": string}
//
// The Python side (utils/katex.py) owns file/line bookkeeping; this script only typesets.
"use strict";
const katex = require("katex");

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
          trust: false,
        }),
      };
    } catch (err) {
      return { error: String(err && err.message ? err.message : err) };
    }
  });
  process.stdout.write(JSON.stringify(results));
});
