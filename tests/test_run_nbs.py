"""tools/run_nbs.py: a notebook run in place keeps its outputs, a second run reproduces them (`--check`), and outputs
that change between runs or name this machine are caught."""
import subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'run_nbs.py'

def _nb(path: Path, *sources: str) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path

def _run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)

def test_kept_outputs_reproduce_and_drift_is_caught(tmp_path):
    nb = _nb(tmp_path / 'a.ipynb', 'x = 6 * 7\nx', '#| eval: false\nraise SystemExit("not run")',
             'print(sorted({"b", "a"}))')
    r = _run(nb)
    assert r.returncode == 0, r.stdout + r.stderr
    kept = nbformat.read(nb, as_version=4)
    assert kept.cells[0].outputs[0]['data']['text/plain'] == '42' and kept.cells[1].outputs == []
    assert kept.cells[2].outputs[0]['text'] == "['a', 'b']\n" and kept.cells[0].execution_count is None
    r = _run('--check', nb)
    assert r.returncode == 0 and 'a.ipynb: outputs reproduced' in r.stdout
    kept.cells.append(nbformat.v4.new_code_cell('import time; time.time_ns()'))     # a clock in an output
    nbformat.write(kept, nb)
    assert _run(nb).returncode == 0
    r = _run('--check', nb)
    assert r.returncode == 1 and 'a.ipynb: outputs differ in cells [3]' in r.stdout

def test_outputs_naming_this_machine_are_refused(tmp_path):
    nb = _nb(tmp_path / 'b.ipynb', 'import tempfile; print(tempfile.mkdtemp())')
    before = nb.read_text()
    r = _run(nb)
    assert r.returncode == 1 and 'b.ipynb: outputs name this machine' in r.stdout
    assert nb.read_text() == before                                                # nothing written
