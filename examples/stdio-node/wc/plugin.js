// wc — an hm stdio plugin in plain Node: JSON-RPC 2.0, one message per line.
"use strict";
const fs = require("fs");
const path = require("path");
const readline = require("readline");

const manifest = {
  name: "wc",
  version: "1.0.0",
  description: "count lines, words and bytes",
  capabilities: [
    { kind: "step_executor", runners: ["wc"] },
    { kind: "subcommand", verb: ["wc"], summary: "count a file", args: [{ name: "file", required: true }] },
  ],
};

const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\n");

function count(file) {
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n").length - (text.endsWith("\n") ? 1 : 0);
  const words = text.split(/\s+/).filter(Boolean).length;
  return `${lines} lines, ${words} words, ${Buffer.byteLength(text)} bytes: ${path.basename(file)}`;
}

// A failure is a JSON-RPC error carrying a PluginError in `data`.
function failure(id, code, message, suggestion) {
  send({ id, error: { code: -32000, message, data: { code, message, suggestion } } });
}

function executeStep(id, input) {
  for (const name of input.step.cmd.split(/\s+/).filter(Boolean)) {
    const file = path.resolve(input.project_root || ".", name);
    if (!fs.existsSync(file)) return send({ id, result: { exit_code: 1, status: "failed", message: `no file ${name}` } });
    // step output: a notification naming the call it belongs to
    send({ method: "emit_step_log", params: { call: id, stream: "stdout", text: count(file) + "\n" } });
  }
  send({ id, result: { exit_code: 0 } });
}

function runSubcommand(id, input) {
  const file = input.args.file;
  if (!fs.existsSync(file)) return failure(id, "no_such_file", `no file ${file}`, "give the path of a file");
  send({ method: "write_stdout", params: { call: id, text: count(file) + "\n" } });
  send({ id, result: { exit_code: 0 } });
}

const methods = {
  initialize: (id) => send({ id, result: { protocol_version: "1.0" } }),
  manifest: (id) => send({ id, result: manifest }),
  execute_step: executeStep,
  run_subcommand: runSubcommand,
  shutdown: (id) => send({ id, result: null }),
};

readline.createInterface({ input: process.stdin })
  .on("line", (line) => {
    if (!line.trim()) return;
    const { id, method, params } = JSON.parse(line);
    if (method === undefined || id === undefined) return; // answers to us and $/cancel: none expected here
    const handler = methods[method];
    if (handler) handler(id, params);
    else send({ id, error: { code: -32601, message: `no method ${method}` } });
  })
  .on("close", () => process.exit(0)); // end of stdin: hm is done or gone
