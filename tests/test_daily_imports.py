"""The daily run's kernel stays light: the imports of `nbs/ops/daily_run.ipynb`, and
building its model jobs, load none of
the libraries only the model workers or research need (scipy, statsmodels, arch, plotly: about 2 s of CPU per run)."""
import ast, json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ('scipy', 'statsmodels', 'arch', 'plotly')


def notebook_imports(path: Path) -> list[str]:
    "Every import statement of the notebook's code cells, in order (nested ones included), as source text."
    out = []
    for c in json.loads(path.read_text())['cells']:
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        out += [ast.unparse(n) for n in ast.walk(ast.parse(src)) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return out


def test_the_notebook_has_imports_to_check():
    lines = notebook_imports(ROOT / 'nbs' / 'ops' / 'daily_run.ipynb')
    assert any('trading_workbench.risk.manager' in s for s in lines) and any('validation.gate' in s for s in lines)


def test_daily_kernel_imports_no_heavy_library(tmp_path):
    code = '\n'.join(notebook_imports(ROOT / 'nbs' / 'ops' / 'daily_run.ipynb') + [
        'from trading_workbench.core.config import Settings',
        'from trading_workbench.signals.runner import default_jobs',
        f"jobs = default_jobs(Settings.load({str(ROOT / 'settings.ini')!r}, env={{}}))",
        'assert len(jobs) == 5, jobs',
        f'print(sorted({{m.split(".")[0] for m in sys.modules}} & set({HEAVY!r})))'])
    r = subprocess.run([sys.executable, '-c', 'import sys\n' + code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == '[]', r.stdout
