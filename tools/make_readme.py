"""Write README.md from nbs/index.ipynb (markdown cells as they are, code cells fenced with their kept text output
below them; `#| hide` cells left out).

nbdev's own `nbdev-readme` renders through Quarto, which this project does not install; this keeps the
same contract (README.md is generated from index.ipynb) with nbformat alone."""
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]

def render(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    "The README text for the index notebook."
    nb = nbformat.read(nb_path, as_version=4)
    parts = ['<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->']
    for c in nb.cells:
        src = c.source.strip('\n')
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        if c.cell_type == 'markdown': parts.append(src)
        elif c.cell_type == 'code' and src:
            body = '\n'.join(l for l in lines if not l.startswith('#|'))
            parts.append(f"```python\n{body}\n```")
            out = ''.join(o.get('text', '') or o.get('data', {}).get('text/plain', '') for o in c.get('outputs', []))
            if out.strip(): parts.append(f"```\n{out.strip()}\n```")
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    (ROOT / 'README.md').write_text(render(), encoding='utf-8')
