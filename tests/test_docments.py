"""tools/docments.py: a public parameter without a docments comment fails the check; the baseline holds a ratchet."""
import json, shutil, subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'docments.py'

DOCUMENTED = '''#| export
def f(
    x: int,            # what x is
    # what y is, on the line above
    y: float = 1.0,
    *args, z=None,     # z
    **kwargs,
) -> int:
    "Documented."
    return x

@dataclass
class Rec:
    "A record."
    a: int             # the a
    b: str = ''        # the b
    def use(self, k): # the key
        return k

@patch
def meth(self: Rec, q: int): # the q
    return q

def _private(u, v): return u
class _Hidden:
    def __init__(self, w): pass
'''

UNDOCUMENTED = '''#| exports
def g(p, r,  # r only: p shares its line
      s): return p

class Svc:
    "Not a record: its __init__ is its parameters."
    def __init__(self, store, clock): # the clock
        self.store = store
    def _helper(self, hidden): pass
    def act(self, what): return what

@dataclass
class Row:
    name: str
    qty: int = 0   # how many

@patch
def go(self: Svc, where): return where
'''

def _notebook(path: Path, *sources: str) -> None:
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    cells.append(nbformat.v4.new_code_cell('def h(undocumented): pass'))      # not exported: not checked
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)

def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), '--root', str(root), *args], capture_output=True, text=True)

def test_project_within_its_baseline_and_a_new_gap_fails(tmp_path):
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')          # the project's notebooks, then one with a gap
    (tmp_path / 'tools').mkdir()
    shutil.copy(ROOT / 'tools' / 'docments_baseline.json', tmp_path / 'tools')
    r = _run(tmp_path)
    assert r.returncode == 0, r.stdout
    _notebook(tmp_path / 'nbs' / '99_new.ipynb', DOCUMENTED, UNDOCUMENTED)
    r = _run(tmp_path)
    assert r.returncode == 1
    assert ['99_new.ipynb', '6', 'FAIL'] in [ln.split() for ln in r.stdout.splitlines()]
    listed = {ln.strip() for ln in r.stdout.splitlines() if ln.startswith('    ')}
    assert listed == {'g: p', 'g: s', 'Svc: store', 'Svc.act: what', 'Row: name', 'Svc.go: where'}

def test_documented_cells_pass_and_baseline_ratchet(tmp_path):
    _notebook(tmp_path / 'nbs' / 'a.ipynb', DOCUMENTED)
    assert _run(tmp_path).returncode == 0
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', UNDOCUMENTED)
    r = _run(tmp_path)
    assert r.returncode == 1 and 'ops/b.ipynb' in r.stdout and 'a.ipynb' not in r.stdout
    bl = tmp_path / 'tools' / 'docments_baseline.json'
    bl.parent.mkdir()
    bl.write_text(json.dumps({'ops/b.ipynb': 6}))
    assert _run(tmp_path).returncode == 0                     # listed: only its count is held
    # a directive is no comment
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', UNDOCUMENTED, '#| export\ndef more(x): pass')
    r = _run(tmp_path)
    assert r.returncode == 1 and ['ops/b.ipynb', '7', 'FAIL', '(allowed', '6)'] in [ln.split()
                                                                                    for ln in r.stdout.splitlines()]
    assert 'more: x' in r.stdout
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', UNDOCUMENTED.replace('def g(p, r,', 'def g(p,  # p\n      r,'))
    r = _run(tmp_path, '--ratchet')
    assert r.returncode == 0 and json.loads(bl.read_text()) == {'ops/b.ipynb': 5}
