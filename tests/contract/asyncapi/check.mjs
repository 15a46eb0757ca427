// Parses an AsyncAPI document with the official parser (@asyncapi/parser), resolving
// its relative $refs from the document's own directory. Prints every diagnostic as
// a JSON line; exits 1 when any is an error, 2 on bad usage.
import { Parser, fromFile } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node check.mjs <asyncapi.json>");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, path).parse();
const severities = ["error", "warning", "information", "hint"];
let errors = 0;
for (const d of diagnostics) {
  const severity = severities[d.severity] ?? String(d.severity);
  if (severity === "error") errors += 1;
  console.log(JSON.stringify({ severity, code: d.code, message: d.message, path: d.path }));
}
console.log(JSON.stringify({ errors, parsed: document !== undefined }));
process.exit(errors || document === undefined ? 1 : 0);
