"""Run notebooks so their examples keep their outputs, cleaned as nbdev-clean cleans them.

    python tools/run_nbs.py nbs/23_models_sarimax.ipynb ...            # run in place, keep the outputs
    python tools/run_nbs.py --check nbs/23_models_sarimax.ipynb ...    # run a copy; fail if an output differs

Each notebook runs in its own folder (examples read `../settings.ini`), with the project's kernel; cells marked
`#| eval: false` are not run and keep no output. The notebook's metadata is left as it was. `--check` is how to
see that the outputs are deterministic (no clock, timing, address, temporary path or progress bar in them): a
second run must give the same notebook. Outputs that name a machine (temporary folders, site-packages paths)
are refused in both modes."""
import argparse, copy, json, re, subprocess, sys, tempfile
from pathlib import Path
import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MACHINE = re.compile('|'.join([r'/tmp/', r'/var/folders/', r'site-packages', r'\.venv/', r'/home/', r'/root/',
                               re.escape(str(ROOT)),
                               re.escape(tempfile.gettempdir())]))   # outputs must not name this machine
SKIP = re.compile(r'^\s*#\|\s*eval\s*:\s*false', re.M)

def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    "The notebook at `path` with every cell run (its metadata untouched), not yet cleaned."
    nb = nbformat.read(path, as_version=4)
    meta, skipped = copy.deepcopy(nb.metadata), {}
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'code' and SKIP.search(c.source): skipped[i], c.source = c.source, ''
    NotebookClient(nb, timeout=timeout, kernel_name='python3',
                   resources={'metadata': {'path': str(path.parent)}}).execute()
    for i, s in skipped.items(): nb.cells[i].source, nb.cells[i].outputs = s, []
    nb.metadata = meta
    return nb

def cleaned(nb: nbformat.NotebookNode) -> dict:
    "The notebook as nbdev-clean leaves it (the project's settings)."
    from nbdev.clean import clean_nb
    from nbdev.config import get_config
    cfg, d = get_config(), json.loads(nbformat.writes(nb))
    clean_nb(d, clear_all=cfg.get('clear_all', False), allowed_metadata_keys=cfg.get('allowed_metadata_keys'),
             allowed_cell_metadata_keys=cfg.get('allowed_cell_metadata_keys'), clean_ids=cfg.get('clean_ids', True))
    return d

def machine_bits(d: dict) -> list[str]:
    "Output lines that name this machine (they would differ on another)."
    out = []
    for i, c in enumerate(d['cells']):
        for o in c.get('outputs', []):
            text = ''.join(o.get('text', '')) + ''.join(''.join(v) for k, v in o.get('data', {}).items()
                                                        if k.startswith('text'))
            out += [f'cell {i}: {ln.strip()[:120]}' for ln in text.splitlines() if MACHINE.search(ln)]
    return out

def outputs(d: dict) -> list:
    return [c.get('outputs', []) for c in d['cells']]

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+', type=Path)
    ap.add_argument('--check', action='store_true', help='run a copy and compare its outputs with the stored ones')
    a = ap.parse_args(argv)
    bad = 0
    for p in a.notebooks:
        p = p.resolve()
        d = cleaned(execute(p))
        if (named := machine_bits(d)):
            print(f'{p.name}: outputs name this machine:', *named, sep='\n  '); bad += 1; continue
        if a.check:
            stored = json.loads(p.read_text())
            diff = [i for i, (x, y) in enumerate(zip(outputs(stored), outputs(d))) if x != y]
            if diff or len(stored['cells']) != len(d['cells']):
                print(f'{p.name}: outputs differ in cells {diff}')
                bad += 1
            else: print(f'{p.name}: outputs reproduced')
            continue
        p.write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')
        subprocess.run([str(BIN / 'nbdev-clean'), '--fname', str(p)], cwd=ROOT, check=True)   # nbdev's own layout
        print(f'{p.name}: ran, {sum(1 for c in d["cells"] if c.get("outputs"))} cells keep outputs')
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
