"""Fail if a public function or class in an exported cell has a parameter without a docments comment.

nbdev's docs take a parameter's description from its docments comment (fastcore.docments): a comment on the
parameter's own line, or comment lines right above it. For every notebook under nbs/ this reads the exported
cells (`#| export`, `#| exports`) and checks, as fastcore would find them:
- each public top-level function (and `@patch` method: its `self` is not a parameter to document);
- each public class: a dataclass's or NamedTuple's fields, else its `__init__`'s parameters, and the
  parameters of its public methods.
`self`, `cls`, `*args` and `**kwargs` are not counted; nor is a parameter sharing its line with the next one
(fastcore gives a line's comment to the last parameter on it). Names starting with `_` are private.

A notebook not yet done is listed in tools/docments_baseline.json with its count of undocumented parameters:
it fails only if the count grows (a ratchet); any other notebook must have none. `--ratchet` lowers the
recorded counts to today's (never raises them); `-v` lists every undocumented parameter."""
import argparse, ast, io, json, re, sys, tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPORT = re.compile(r'^\s*#\|\s*exports?\s*$', re.M)
SKIP = {'self', 'cls'}

@dataclass(frozen=True)
class Missing:
    "A parameter with no docments comment: where (notebook), whose (function or class) and which."
    notebook: str   # the notebook's path under nbs/
    owner: str      # `f`, `Cls`, `Cls.method`
    param: str      # the parameter (or dataclass field)

def comment_lines(source: str) -> set[int]:
    "Line numbers (1-based) holding a comment; not nbdev's `#|` directives (they are not about a parameter)."
    toks = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0] for t in toks if t.type == tokenize.COMMENT and not t.string.startswith('#|')}

def documented(line: int, comments: set[int], param_lines: set[int]) -> bool:
    "fastcore's rule: a comment on the parameter's line, or comment lines right above it (not another's line)."
    return line in comments or (line - 1 in comments and line - 1 not in param_lines)

def unlisted(named: list[tuple[int, str]], comments: set[int]) -> list[str]:
    "The names among (line, name) pairs fastcore would find no comment for (a line's comment is its last name's)."
    last = {ln: name for ln, name in named}          # later names on a line win, as in fastcore's dict
    lines = set(last)
    return [name for ln, name in named if last[ln] != name or not documented(ln, comments, lines)]

def params(fn: ast.FunctionDef | ast.AsyncFunctionDef, patched: bool = False) -> list[tuple[int, str]]:
    "A function's parameters to document, as (line, name): not self/cls, *args, **kwargs, nor a @patch's first."
    a = fn.args
    named = [*a.posonlyargs, *a.args]
    if patched and named: named = named[1:]
    return [(p.lineno, p.arg) for p in [*named, *a.kwonlyargs] if p.arg not in SKIP]

def decorator_names(node: ast.AST) -> set[str]:
    "The decorators' bare names (`patch`, `dataclass`, `property` ...), calls and attributes included."
    out = set()
    for d in getattr(node, 'decorator_list', []):
        d = d.func if isinstance(d, ast.Call) else d
        out.add(d.attr if isinstance(d, ast.Attribute) else getattr(d, 'id', ''))
    return out

def is_record(cls: ast.ClassDef) -> bool:
    "A dataclass or a NamedTuple: its annotated fields are its parameters."
    bases = {b.attr if isinstance(b, ast.Attribute) else getattr(b, 'id', '') for b in cls.bases}
    return 'dataclass' in decorator_names(cls) or 'NamedTuple' in bases

def class_missing(cls: ast.ClassDef, comments: set[int]) -> list[tuple[str, str]]:
    "A public class's undocumented (owner, parameter): its fields or `__init__`, and its public methods."
    out = []
    if is_record(cls):
        fields = [(s.lineno, s.target.id) for s in cls.body if isinstance(s, ast.AnnAssign)
                  and isinstance(s.target, ast.Name)]
        out += [(cls.name, p) for p in unlisted(fields, comments)]
    for f in cls.body:
        if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)): continue
        if f.name == '__init__' and not is_record(cls): out += [(cls.name, p) for p in unlisted(params(f), comments)]
        elif not f.name.startswith('_'):
            out += [(f'{cls.name}.{f.name}', p) for p in unlisted(params(f), comments)]
    return out

def cell_missing(source: str) -> list[tuple[str, str]]:
    "Undocumented (owner, parameter) pairs of the public functions and classes one exported cell defines."
    tree, comments = ast.parse(source), comment_lines(source)
    out = []
    for node in tree.body:
        if not isinstance(node,
                          (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith('_'): continue
        if isinstance(node, ast.ClassDef): out += class_missing(node, comments)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            patched = 'patch' in decorator_names(node)
            owner = f'{node.args.args[0].annotation.id}.{node.name}' if patched and _annotated_name(node) else node.name
            out += [(owner, p) for p in unlisted(params(node, patched), comments)]
    return out

def _annotated_name(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    "Whether a @patch function's first parameter is annotated with a bare class name (`self: Store`)."
    a = fn.args.args
    return bool(a) and isinstance(a[0].annotation, ast.Name)

def notebook_missing(path: Path, name: str) -> list[Missing]:
    "Every undocumented public parameter in one notebook's exported cells, in order."
    cells = json.loads(path.read_text(encoding='utf-8')).get('cells', [])
    src = [''.join(c.get('source', '')) for c in cells if c.get('cell_type') == 'code']
    code = ['\n'.join(ln for ln in s.splitlines() if not ln.lstrip().startswith('%')) for s in src if EXPORT.search(s)]
    return [Missing(name, o, p) for s in code for o, p in cell_missing(s)]

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', type=Path, default=ROOT, help='project root holding nbs/')
    ap.add_argument('--baseline', type=Path, help='ratchet file (default: <root>/tools/docments_baseline.json)')
    ap.add_argument('--ratchet', action='store_true', help="lower the baseline's counts to today's")
    ap.add_argument('-v', '--verbose', action='store_true', help='list every undocumented parameter')
    a = ap.parse_args(argv)
    nbs, bl_path = a.root / 'nbs', a.baseline or a.root / 'tools' / 'docments_baseline.json'
    baseline = json.loads(bl_path.read_text()) if bl_path.is_file() else {}
    paths = sorted(p for p in nbs.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    found = {p.relative_to(nbs).as_posix(): notebook_missing(p, p.relative_to(nbs).as_posix()) for p in paths}
    failed = []
    print(f"{'notebook':40} {'undocumented':>12}  status")
    for name, miss in found.items():
        allowed = baseline.get(name, 0)
        bad = len(miss) > allowed
        if bad: failed.append(name)
        mark = 'FAIL' if bad else ('baseline' if name in baseline else 'ok')
        if miss or name in baseline: print(f'{name:40} {len(miss):12}  {mark}' + (f' (allowed {allowed})'
                                                                                  if name in baseline else ''))
        if (a.verbose or bad) and miss: print(*(f'    {m.owner}: {m.param}' for m in miss), sep='\n')
    print(f"{'total':40} {sum(map(len, found.values())):12}  in {sum(1 for m in found.values() if m)} of {len(found)} "
          f"notebooks")
    for stale in sorted(set(baseline) - set(found)): print(f'baseline names a missing notebook: {stale}')
    done = sorted(n for n in baseline if n in found and not found[n])
    if done: print('fully documented, remove from the baseline:', *done)
    if a.ratchet:
        lowered = {k: min(v, len(found.get(k, []))) for k, v in baseline.items() if found.get(k)}
        bl_path.write_text(json.dumps(lowered, indent=1, sort_keys=True) + '\n')
    if failed:
        print('\nparameters without a docments comment (`x: int,  # what x is`), more than the baseline allows:',
              *failed, sep='\n  ')
        return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
