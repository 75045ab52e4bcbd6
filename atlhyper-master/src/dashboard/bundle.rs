//! The page's script modules joined into one script, so a first load fetches one file instead of
//! one per module (on HTTP/1.1 a browser opens six connections per origin: fifteen modules cost
//! three round trips to the master before any script runs).
//!
//! This is not a general JavaScript bundler. It handles the one module style the dashboard is
//! written in, and refuses anything else with an error (the unit tests bundle the real modules,
//! so a module that leaves the style fails the build's tests, never a browser):
//! - imports are single lines `import { a, b as c } from './x.js';` at the start of a line;
//! - exports are declarations `export function`, `export async function`, `export const`,
//!   `export class` at the start of a line (no `export let`: a bundle has no live bindings);
//! - no import cycles.
//!
//! Each module becomes a function scope that returns its exports, in dependency order, so two
//! modules may use the same top-level name and evaluation order is that of ES modules.

use std::collections::{BTreeMap, BTreeSet};

/// Why the modules could not be joined.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum BundleError {
    #[error("{module}:{line}: {what}")]
    Syntax {
        module: String,
        line: usize,
        what: String,
    },
    #[error("{module} imports {target}, which is not one of the page's modules")]
    UnknownImport { module: String, target: String },
    #[error("import cycle through {0}")]
    Cycle(String),
    #[error("no entry module {0}")]
    NoEntry(String),
}

/// One import line: the module it names and the bindings `(exported, local)`.
#[derive(Debug, PartialEq, Eq)]
struct Import<'a> {
    from: &'a str,
    names: Vec<(&'a str, &'a str)>,
}

/// A module split into its imports, its exported names and its body with `export ` removed.
#[derive(Debug)]
struct Module<'a> {
    imports: Vec<Import<'a>>,
    exports: Vec<&'a str>,
    body: String,
}

fn syntax(module: &str, line: usize, what: impl Into<String>) -> BundleError {
    BundleError::Syntax {
        module: module.to_owned(),
        line,
        what: what.into(),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// `import { a, b as c } from './x.js';` -> x.js and [(a, a), (b, c)].
fn parse_import<'a>(module: &str, n: usize, line: &'a str) -> Result<Import<'a>, BundleError> {
    let bad = || {
        syntax(
            module,
            n,
            "an import must read `import { a, b as c } from './x.js';`",
        )
    };
    let rest = line.strip_prefix("import {").ok_or_else(bad)?;
    let (list, from) = rest.split_once("} from ").ok_or_else(bad)?;
    let from = from
        .trim()
        .strip_suffix(';')
        .and_then(|f| f.strip_prefix("'./"))
        .and_then(|f| f.strip_suffix('\''))
        .filter(|f| !f.contains(['/', '\'']))
        .ok_or_else(bad)?;
    let mut names = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (exported, local) = match part.split_once(" as ") {
            Some((e, l)) => (e.trim(), l.trim()),
            None => (part, part),
        };
        if !is_identifier(exported) || !is_identifier(local) {
            return Err(bad());
        }
        names.push((exported, local));
    }
    Ok(Import { from, names })
}

/// The name an `export` declaration line declares.
fn exported_name<'a>(module: &str, n: usize, declaration: &'a str) -> Result<&'a str, BundleError> {
    let rest = ["async function ", "function ", "const ", "class "]
        .iter()
        .find_map(|k| declaration.strip_prefix(k))
        .ok_or_else(|| {
            syntax(
                module,
                n,
                "only `export function`, `export async function`, `export const` and `export class` can be bundled",
            )
        })?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    if is_identifier(name) {
        Ok(name)
    } else {
        Err(syntax(module, n, "an exported declaration without a name"))
    }
}

fn parse<'a>(module: &str, source: &'a str) -> Result<Module<'a>, BundleError> {
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    let mut body = String::with_capacity(source.len());
    for (i, line) in source.lines().enumerate() {
        let n = i + 1;
        if line.starts_with("import ") || line.starts_with("import{") {
            imports.push(parse_import(module, n, line)?);
            // Kept as a blank line, so line numbers in a stack trace stay close to the source.
            body.push('\n');
        } else if let Some(declaration) = line.strip_prefix("export ") {
            exports.push(exported_name(module, n, declaration)?);
            body.push_str(declaration);
            body.push('\n');
        } else if line.starts_with("export{") || line == "export" {
            return Err(syntax(module, n, "an export this bundler does not know"));
        } else {
            body.push_str(line);
            body.push('\n');
        }
    }
    Ok(Module {
        imports,
        exports,
        body,
    })
}

/// The variable holding a module's exports in the bundle (`dom.js` -> `__module_dom`).
fn binding(module: &str) -> String {
    let stem = module.strip_suffix(".js").unwrap_or(module);
    let safe: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("__module_{safe}")
}

/// Modules in an order where each comes after everything it imports (depth first from the
/// entry: the order a browser evaluates them in).
fn order<'a>(
    entry: &'a str,
    parsed: &BTreeMap<&'a str, Module<'a>>,
) -> Result<Vec<&'a str>, BundleError> {
    fn visit<'a>(
        name: &'a str,
        parsed: &BTreeMap<&'a str, Module<'a>>,
        open: &mut BTreeSet<&'a str>,
        done: &mut BTreeSet<&'a str>,
        out: &mut Vec<&'a str>,
    ) -> Result<(), BundleError> {
        if done.contains(name) {
            return Ok(());
        }
        if !open.insert(name) {
            return Err(BundleError::Cycle(name.to_owned()));
        }
        for import in &parsed[name].imports {
            let Some((&target, _)) = parsed.get_key_value(import.from) else {
                return Err(BundleError::UnknownImport {
                    module: name.to_owned(),
                    target: import.from.to_owned(),
                });
            };
            visit(target, parsed, open, done, out)?;
        }
        open.remove(name);
        done.insert(name);
        out.push(name);
        Ok(())
    }
    if !parsed.contains_key(entry) {
        return Err(BundleError::NoEntry(entry.to_owned()));
    }
    let mut out = Vec::new();
    visit(
        entry,
        parsed,
        &mut BTreeSet::new(),
        &mut BTreeSet::new(),
        &mut out,
    )?;
    Ok(out)
}

/// One script from `modules` (file name, source), evaluated as the browser would evaluate
/// `entry` with its imports. Modules the entry does not reach are left out.
pub(super) fn bundle(modules: &[(&str, &str)], entry: &str) -> Result<String, BundleError> {
    let parsed = modules
        .iter()
        .map(|&(name, source)| Ok((name, parse(name, source)?)))
        .collect::<Result<BTreeMap<_, _>, BundleError>>()?;
    let mut out = String::new();
    for name in order(entry, &parsed)? {
        let module = &parsed[name];
        out.push_str(&format!("// ---- {name} ----\n"));
        let is_entry = name == entry;
        if is_entry {
            out.push_str("{\n");
        } else {
            out.push_str(&format!("const {} = (() => {{\n", binding(name)));
        }
        for import in &module.imports {
            let names: Vec<String> = import
                .names
                .iter()
                .map(|&(e, l)| {
                    if e == l {
                        e.to_owned()
                    } else {
                        format!("{e}: {l}")
                    }
                })
                .collect();
            out.push_str(&format!(
                "const {{ {} }} = {};\n",
                names.join(", "),
                binding(import.from)
            ));
        }
        out.push_str(&module.body);
        if is_entry {
            out.push_str("}\n");
        } else {
            out.push_str(&format!(
                "return {{ {} }};\n}})();\n",
                module.exports.join(", ")
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_become_scopes_in_dependency_order() {
        let modules = [
            (
                "app.js",
                "import { twice, LIMIT as MAX } from './b.js';\nconst x = 1;\nimportant(x);\nexported(x);\nconsole.log(twice(MAX), x);\n",
            ),
            (
                "b.js",
                "import { base } from './c.js';\nconst x = 2;\nexport const LIMIT = base + x;\nexport function twice(v) { return 2 * v; }\n",
            ),
            ("c.js", "export const base = 40;\n"),
            ("unused.js", "export const never = 1;\n"),
        ];
        let js = bundle(&modules, "app.js").expect("bundles");
        let c = js
            .find("const __module_c = (() => {")
            .expect("c.js wrapped");
        let b = js
            .find("const __module_b = (() => {")
            .expect("b.js wrapped");
        let app = js
            .find("// ---- app.js ----\n{\n")
            .expect("the entry is a block");
        assert!(c < b && b < app, "dependencies first:\n{js}");
        assert!(js.contains("const { base } = __module_c;\n"));
        assert!(js.contains("const { twice, LIMIT: MAX } = __module_b;\n"));
        assert!(js.contains("return { LIMIT, twice };\n})();"));
        assert!(js.contains("\nconst LIMIT = base + x;\n"), "export removed");
        assert!(!js.contains("never"), "an unreachable module is left out");
        assert!(
            js.contains("\nimportant(x);\nexported(x);\n"),
            "names that only start like a keyword are code"
        );
        assert!(!js.contains("import "), "no import left:\n{js}");
    }

    #[test]
    fn what_it_cannot_bundle_is_an_error_naming_the_line() {
        let entry = |src: &'static str| [("app.js", src)];
        for (src, want) in [
            ("import x from './b.js';\n", "app.js:1"),
            ("import { a } from 'https://cdn/x.js';\n", "app.js:1"),
            ("import { a } from './dir/x.js';\n", "app.js:1"),
            ("import {\n  a,\n} from './b.js';\n", "app.js:1"),
            ("const a = 1;\nexport let b = 2;\n", "app.js:2"),
            ("export { a };\n", "app.js:1"),
            ("export default 1;\n", "app.js:1"),
            ("import { a-b } from './b.js';\n", "app.js:1"),
            ("const a = 1;\nexport{ a };\n", "app.js:2"),
        ] {
            let err = bundle(&entry(src), "app.js").expect_err(src).to_string();
            assert!(err.starts_with(want), "{src:?}: {err}");
        }
        assert_eq!(
            bundle(&entry("import { a } from './b.js';\n"), "app.js"),
            Err(BundleError::UnknownImport {
                module: "app.js".into(),
                target: "b.js".into()
            })
        );
        let cycle = [
            ("app.js", "import { a } from './a.js';\n"),
            ("a.js", "import { b } from './b.js';\nexport const a = 1;\n"),
            ("b.js", "import { a } from './a.js';\nexport const b = 1;\n"),
        ];
        assert!(matches!(
            bundle(&cycle, "app.js"),
            Err(BundleError::Cycle(_))
        ));
        assert_eq!(
            bundle(&cycle, "main.js"),
            Err(BundleError::NoEntry("main.js".into()))
        );
    }
}
