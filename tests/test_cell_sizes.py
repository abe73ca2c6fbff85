"""tools/cell_sizes.py: a notebook with a long exported cell fails the check; the baseline holds a ratchet."""
import json, shutil, subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'cell_sizes.py'

def _notebook(path: Path, *cell_lengths: int, export: str = '#| export') -> None:
    "A notebook whose exported cells have the given numbers of code lines (plus a blank line each, not counted)."
    cells = [nbformat.v4.new_code_cell('\n'.join([export, *(f'x{i} = {i}' for i in range(n)), '']))
             for n in cell_lengths]
    cells.append(nbformat.v4.new_code_cell('\n'.join(f'y{i} = {i}' for i in range(99))))   # not exported: not counted
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)

def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), '--root', str(root), *args], capture_output=True, text=True)

def test_long_cell_fails(tmp_path):
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')          # the project's notebooks, then one too long
    (tmp_path / 'tools').mkdir()
    shutil.copy(ROOT / 'tools' / 'cell_sizes_baseline.json', tmp_path / 'tools')
    r = _run(tmp_path)
    assert r.returncode == 0, r.stdout
    _notebook(tmp_path / 'nbs' / '99_long.ipynb', 5, 41, 6, export='#| exports')
    r = _run(tmp_path)
    assert r.returncode == 1
    assert '99_long.ipynb: a cell of 41 lines (aim <= 40)' in r.stdout
    assert ['99_long.ipynb', '3', '41', '6', 'FAIL'] in [ln.split() for ln in r.stdout.splitlines()]

def test_median_and_baseline_ratchet(tmp_path):
    _notebook(tmp_path / 'nbs' / 'a.ipynb', 10, 14, 40)
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', 15, 15, 3)
    r = _run(tmp_path)
    assert r.returncode == 1 and 'ops/b.ipynb: median 15 (aim < 15)' in r.stdout and 'a.ipynb:' not in r.stdout
    bl = tmp_path / 'tools' / 'cell_sizes_baseline.json'
    bl.parent.mkdir()
    bl.write_text(json.dumps({'ops/b.ipynb': 20}))
    assert _run(tmp_path).returncode == 0                     # listed: only its longest cell is held
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', 15, 21, 3)
    r = _run(tmp_path)
    assert r.returncode == 1 and 'longest cell grew to 21 (baseline 20)' in r.stdout
    _notebook(tmp_path / 'nbs' / 'ops' / 'b.ipynb', 15, 12, 3)
    r = _run(tmp_path, '--ratchet')
    assert r.returncode == 0 and json.loads(bl.read_text()) == {'ops/b.ipynb': 15}
    assert 'meet the aims, remove from the baseline: ops/b.ipynb' in r.stdout
