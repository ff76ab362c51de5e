// The shapes of a TypeScript declaration file's exported types, as JSON, for tests to hold them to a
// schema (tests/web/test_js_client.py: the client's answer types and error codes against docs/openapi.yaml).
//   node tests/support/ts_shapes.mjs <typescript package dir> <file.d.ts>
// Prints {"interfaces": {Name: {prop: {"optional": bool, "type": "<text>"}}}, "unions": {Name: [literal...]}}:
// an interface's own and inherited (`extends`) properties; a type alias's string literals (one level of
// aliases followed), with non-literal members as their text (e.g. "`http_${number}`").
import { createRequire } from "node:module";
import path from "node:path";

const [tsDir, file] = process.argv.slice(2);
const ts = createRequire(path.join(path.resolve(tsDir), "package.json"))("typescript");
const source = ts.createSourceFile(file, (await import("node:fs")).readFileSync(file, "utf8"), ts.ScriptTarget.ES2022, true);

const interfaces = {};
const aliases = {};
for (const node of source.statements) {
  if (ts.isInterfaceDeclaration(node)) {
    const props = {};
    for (const member of node.members) {
      if (ts.isPropertySignature(member) && member.type) {
        props[member.name.getText(source)] = { optional: Boolean(member.questionToken), type: member.type.getText(source) };
      }
    }
    const bases = (node.heritageClauses ?? []).flatMap((c) => c.types.map((t) => t.expression.getText(source)));
    interfaces[node.name.text] = { props, bases };
  } else if (ts.isTypeAliasDeclaration(node)) {
    aliases[node.name.text] = node.type;
  }
}

function members(typeNode, depth = 0) {
  if (ts.isUnionTypeNode(typeNode)) return typeNode.types.flatMap((t) => members(t, depth));
  if (ts.isLiteralTypeNode(typeNode) && ts.isStringLiteral(typeNode.literal)) return [typeNode.literal.text];
  if (ts.isTypeReferenceNode(typeNode) && depth < 1 && aliases[typeNode.typeName.getText(source)]) {
    return members(aliases[typeNode.typeName.getText(source)], depth + 1);
  }
  return [typeNode.getText(source)];
}

const flat = (name) => {
  const { props, bases } = interfaces[name];
  return Object.assign({}, ...bases.filter((b) => interfaces[b]).map(flat), props);
};
console.log(JSON.stringify({
  interfaces: Object.fromEntries(Object.keys(interfaces).map((name) => [name, flat(name)])),
  unions: Object.fromEntries(Object.entries(aliases).map(([name, node]) => [name, members(node)])),
}));
