"""Fail if a notebook's exported cells are too long to read as paragraphs.

For every notebook under nbs/ (nbs/ops included) it counts the code lines of each exported cell (a code cell
with `#| export` or `#| exports`; non-blank lines, the `#|` directive lines left out) and prints the longest
and the median per notebook, then the totals. The aims: no exported cell over MAX_LINES lines and a median
under MEDIAN_BELOW per notebook.

A notebook not yet converted is listed in tools/cell_sizes_baseline.json with its longest cell: it fails only
if that cell grows (a ratchet). Convert a notebook, then delete its line there so it is held to the aims;
`--ratchet` lowers the recorded values to today's (never raises them)."""
import argparse, json, re, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES, MEDIAN_BELOW = 40, 15
EXPORT = re.compile(r'^\s*#\|\s*exports?\s*$')

def cell_lines(source: str) -> int | None:
    "Code lines of an exported cell (non-blank, no `#|` directives); None if the cell is not exported."
    lines = source.splitlines()
    if not any(EXPORT.match(ln) for ln in lines): return None
    return sum(1 for ln in lines if ln.strip() and not ln.lstrip().startswith('#|'))

def notebook_sizes(path: Path) -> list[int]:
    "Code lines of each exported cell of one notebook, in order."
    cells = json.loads(path.read_text(encoding='utf-8')).get('cells', [])
    sizes = [cell_lines(''.join(c.get('source', ''))) for c in cells if c.get('cell_type') == 'code']
    return [n for n in sizes if n is not None]

def verdict(name: str, sizes: list[int], baseline: dict[str, int]) -> str:
    "'' if the notebook passes, else why it fails."
    if not sizes: return ''
    longest, median = max(sizes), statistics.median(sizes)
    if name in baseline:
        return f'longest cell grew to {longest} (baseline {baseline[name]})' if longest > baseline[name] else ''
    why = []
    if longest > MAX_LINES: why.append(f'a cell of {longest} lines (aim <= {MAX_LINES})')
    if median >= MEDIAN_BELOW: why.append(f'median {median:g} (aim < {MEDIAN_BELOW})')
    return '; '.join(why)

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--root', type=Path, default=ROOT, help='project root holding nbs/')
    ap.add_argument('--baseline', type=Path, help='ratchet file (default: <root>/tools/cell_sizes_baseline.json)')
    ap.add_argument('--ratchet', action='store_true', help="lower the baseline's values to today's longest cells")
    a = ap.parse_args(argv)
    nbs, bl_path = a.root / 'nbs', a.baseline or a.root / 'tools' / 'cell_sizes_baseline.json'
    baseline = json.loads(bl_path.read_text()) if bl_path.is_file() else {}
    paths = sorted(p for p in nbs.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    rows, every, failed = [], [], []
    for p in paths:
        name, sizes = p.relative_to(nbs).as_posix(), notebook_sizes(p)
        every += sizes
        why = verdict(name, sizes, baseline)
        if why: failed.append(f'{name}: {why}')
        mark = 'FAIL' if why else ('baseline' if name in baseline else 'ok')
        rows.append((name, len(sizes), max(sizes, default=0), statistics.median(sizes) if sizes else 0, mark))
    print(f"{'notebook':40} {'cells':>5} {'longest':>7} {'median':>6}  status")
    for name, n, longest, median, mark in rows: print(f'{name:40} {n:5} {longest:7} {median:6g}  {mark}')
    if every:
        print(f"{'total':40} {len(every):5} {max(every):7} {statistics.median(every):6g}  "
              f'({sum(n > MAX_LINES for n in every)} cells over {MAX_LINES} lines)')
    for stale in sorted(set(baseline) - {r[0] for r in rows}): print(f'baseline names a missing notebook: {stale}')
    ready = [r[0] for r in rows if r[0] in baseline and r[1] and r[2] <= MAX_LINES and r[3] < MEDIAN_BELOW]
    if ready: print('meet the aims, remove from the baseline:', *ready)
    if a.ratchet:
        lowered = {k: min(v, next((r[2] for r in rows if r[0] == k), v)) for k, v in baseline.items()}
        bl_path.write_text(json.dumps(lowered, indent=1, sort_keys=True) + '\n')
    if failed:
        print(f'\nexported cells too long (aims: no cell over {MAX_LINES} code lines, median under {MEDIAN_BELOW}):',
              *failed, sep='\n  ')
        return 1
    return 0

if __name__ == '__main__':
    sys.exit(main())
