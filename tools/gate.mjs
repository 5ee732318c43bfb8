// The Espruino compat gate: a bundle must parse as ECMAScript 5 and must not use a construct
// that ../shared/espruino.md lists as failing on Espruino.
import { parse } from 'acorn';
import { ancestor, recursive } from 'acorn-walk';

/** Globals that Espruino does not have (`typeof X === "undefined"` there). */
const ABSENT_GLOBALS = ['Map', 'Set', 'Symbol', 'WeakMap', 'WeakSet'];
/** Static methods that Espruino does not have. */
const ABSENT_MEMBERS = { Array: ['from'], Object: ['freeze'] };
/** TypeScript downlevel helpers: emitted with noEmitHelpers, they would be undefined at run time. */
const TS_HELPERS = /^__(extends|assign|rest|spreadArray|spread|awaiter|generator|values|read|makeTemplateObject|decorate|param|metadata|exportStar|importStar|importDefault|createBinding|classPrivateField\w*)$/;

function where(code, node) {
  let line = 1;
  let col = 0;
  for (let i = 0; i < node.start; i++) {
    if (code.charCodeAt(i) === 10) {
      line++;
      col = 0;
    } else col++;
  }
  return `${line}:${col + 1}`;
}

/** True when `node` (an Identifier) is used as a variable, not as a property name or key. */
function isReference(node, ancestors) {
  const parent = ancestors[ancestors.length - 2];
  if (!parent) return true;
  if (parent.type === 'MemberExpression' && parent.property === node && !parent.computed) return false;
  if (parent.type === 'Property' && parent.key === node && !parent.computed) return false;
  return true;
}

/** acorn-walk visitors that leave out property names and keys: what remains are variable references. */
const propertyNamesSkipped = {
  MemberExpression(m, st, c) {
    c(m.object, st, 'Expression');
    if (m.computed) c(m.property, st, 'Expression');
  },
  Property(p, st, c) {
    if (p.computed) c(p.key, st, 'Expression');
    c(p.value, st, 'Expression');
  },
};

/** Names that `node` reads as variables at the time it runs: nested functions are skipped,
 * since they run later. */
function namesUsedNow(node) {
  const names = [];
  recursive(node, null, {
    Function() {},
    Identifier(id) {
      names.push(id.name);
    },
    ...propertyNamesSkipped,
  });
  return names;
}

/** Espruino does not hoist function declarations: a function called, in the same scope, by a
 * statement above its declaration is not defined yet. */
function useBeforeDeclaration(body, report) {
  body.forEach((stmt, i) => {
    if (stmt.type !== 'FunctionDeclaration') return;
    for (let j = 0; j < i; j++) {
      if (body[j].type !== 'FunctionDeclaration' && namesUsedNow(body[j]).includes(stmt.id.name)) {
        report(body[j], `function ${stmt.id.name} used above its declaration (Espruino does not hoist functions)`);
        return;
      }
    }
  });
}

/** Espruino does not hoist `var` either: a name assigned or read in a function above its `var` statement is a
 * global there (or the enclosing scope's), not the local. Minifiers produce this when they fold an initializer
 * into a first use and leave the `var` to a later statement. Nested functions are scopes of their own. */
function varUseBeforeDeclaration(fn, report) {
  const params = new Set((fn.params || []).map((p) => p.name));
  const declared = new Map(); // name -> start of its first declarator
  const uses = []; // [identifier, is it a declarator's own id]
  const visit = (node) =>
    recursive(node, null, {
      Function(f, st, c) {
        if (f !== fn) return; // its own scope, checked on its own
        for (const stmt of f.body.body || []) c(stmt, st, 'Statement');
      },
      VariableDeclarator(d, st, c) {
        if (!declared.has(d.id.name)) declared.set(d.id.name, d.start);
        if (d.init) c(d.init, st, 'Expression');
      },
      CatchClause(cl, st, c) {
        if (cl.param) params.add(cl.param.name);
        c(cl.body, st, 'Statement');
      },
      Identifier(id) {
        uses.push(id);
      },
      VariablePattern(id) {
        uses.push(id); // an assignment's target
      },
      ...propertyNamesSkipped,
    });
  visit(fn);
  for (const id of uses) {
    const at = declared.get(id.name);
    if (at !== undefined && id.start < at && !params.has(id.name)) {
      report(id, `var ${id.name} used above its declaration (Espruino does not hoist var)`);
      declared.delete(id.name);
    }
  }
}

/** Returns a list of problems (empty when the code passes). */
export function checkEspruinoCompat(code) {
  let ast;
  try {
    ast = parse(code, { ecmaVersion: 5, sourceType: 'script', locations: false });
  } catch (err) {
    return [`not ECMAScript 5: ${err.message}`];
  }
  const problems = [];
  const bindings = [];
  const report = (node, text) => problems.push(`${where(code, node)} ${text}`);
  useBeforeDeclaration(ast.body, report);
  varUseBeforeDeclaration({ type: 'Function', params: [], body: ast }, report);
  ancestor(ast, {
    ReturnStatement(node, _state, ancestors) {
      // Espruino 2v29 fails with "SyntaxError: Unexpected end of Input" on a bare `return` that is the whole body
      // of an if, else or loop without braces and is followed at once by the function's closing brace:
      // `function f(x){if(x)return}` (whether or not it runs). With braces, a semicolon or a value it parses.
      const parent = ancestors[ancestors.length - 2];
      const fn = ancestors.findLast((a) => /Function/.test(a.type));
      if (!node.argument && parent.type !== 'BlockStatement' && code.slice(node.start, node.end + 1) === 'return}' && fn && fn.body.end === node.end + 1) {
        report(node, 'bare return as the body of an if/loop without braces right before the function\'s "}" (Espruino: Unexpected end of Input)');
      }
    },
    LabeledStatement(node) {
      report(node, `labelled statement "${node.label.name}:" (fails on Espruino)`);
    },
    VariableDeclarator(node) {
      bindings.push(node.id);
    },
    Function(node) {
      if (node.body.type === 'BlockStatement') {
        useBeforeDeclaration(node.body.body, report);
        varUseBeforeDeclaration(node, report);
      }
      if (node.id) bindings.push(node.id);
      for (const p of node.params) bindings.push(p);
    },
    CatchClause(node) {
      if (node.param) bindings.push(node.param);
    },
    Identifier(node, _state, ancestors) {
      if (!isReference(node, ancestors)) return;
      if (ABSENT_GLOBALS.includes(node.name)) report(node, `${node.name} (absent on Espruino)`);
      if (TS_HELPERS.test(node.name)) report(node, `TypeScript helper ${node.name} (not emitted; avoid the construct)`);
    },
    MemberExpression(node) {
      const obj = node.object;
      const prop = node.computed ? node.property.value : node.property.name;
      if (obj.type === 'Identifier' && ABSENT_MEMBERS[obj.name] && ABSENT_MEMBERS[obj.name].includes(prop)) {
        report(node, `${obj.name}.${prop} (absent on Espruino)`);
      }
    },
  });
  for (const id of bindings) {
    if (id.name === 'undefined') report(id, '"undefined" as a binding name (fails to parse on Espruino)');
  }
  return problems;
}
