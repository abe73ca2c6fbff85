"""Fail if the library, the notebooks or the README are not what the notebooks generate.

Runs nbdev-export, nbdev-clean and the README generator, and compares every file they may touch before
and after. Works on a dirty work tree too (it compares contents, not git status); on a difference the
regenerated files are left in place for you to review and commit."""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def snapshot() -> dict[str, str]:
    "Path -> sha256 of every generated or cleaned file."
    files = [*(ROOT / 'trading_workbench').rglob('*.py'), *(ROOT / 'nbs').rglob('*.ipynb'), ROOT / 'README.md']
    return {str(f.relative_to(ROOT)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in files if f.is_file() and '.ipynb_checkpoints' not in f.parts}

def main() -> int:
    before = snapshot()
    for cmd in ([str(BIN / 'nbdev-export')], [str(BIN / 'nbdev-clean')],
                [sys.executable, str(ROOT / 'tools' / 'make_readme.py')]):
        subprocess.run(cmd, cwd=ROOT, check=True)
    after = snapshot()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        print('out of sync with nbs/ (regenerated now; review and commit):', *changed, sep='\n  ')
        return 1
    print(f'in sync: {len(after)} generated/cleaned files match the notebooks')
    return 0

if __name__ == '__main__':
    sys.exit(main())
