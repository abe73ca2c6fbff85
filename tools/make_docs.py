"""Build the docs pages: every notebook as an HTML chapter with its kept outputs, and an index linking them.

    python tools/make_docs.py                                   # every notebook under nbs/ into _docs/
    python tools/make_docs.py --out /tmp/d nbs/27_models_signals.ipynb   # some chapters (the index lists them)

The Quarto-free equivalent of nbdev's docs: nbconvert renders the notebooks as they are stored (nothing is
run: the outputs are the ones `tools/run_nbs.py` kept). As nbdev's pages do, a page leaves out `#| hide` cells
and the `#|` directive lines, and a cell left empty by that. Plotly figures kept as JSON are drawn with one
`plotly.min.js` beside the pages (no network). `nbs/index.ipynb` becomes `index.html`, followed by the table of
chapters; each chapter links to the previous, the next and the index. Prints per page how many cells show an
output, so a chapter whose examples show nothing stands out."""
import argparse, hashlib, json, re, shutil, sys
from dataclasses import dataclass
from pathlib import Path
import nbformat
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parents[1]
DIRECTIVE = re.compile(r'^\s*#\|')
HIDE = re.compile(r'^\s*#\|\s*hide\s*$', re.M)
PLOTLY = 'application/vnd.plotly.v1+json'

@dataclass
class Page:
    "One rendered notebook: where it came from, its file name, title, summary and how many cells show an output."
    source: Path      # the notebook
    name: str         # the page's file name, e.g. `27_models_signals.html`
    title: str        # the notebook's first `# ` heading (else its stem)
    summary: str      # the `> ` line under the title ('' if none)
    outputs: int      # code cells that show an output

def title_of(nb: nbformat.NotebookNode, stem: str) -> tuple[str, str]:
    "The notebook's `# title` and `> summary` from its first markdown cell."
    md = next((c.source for c in nb.cells if c.cell_type == 'markdown'), '')
    t = re.search(r'^#\s+(.+)$', md, re.M)
    s = re.search(r'^>\s*(.+)$', md, re.M)
    return (t.group(1).strip() if t else stem), (s.group(1).strip() if s else '')

def plotly_html(fig: dict) -> str:
    "A kept plotly figure (its JSON) as a div drawn by the `plotly.min.js` beside the page."
    import plotly.io as pio
    text = json.dumps(fig, sort_keys=True)
    div = 'fig-' + hashlib.sha1(text.encode()).hexdigest()[:12]     # the same page for the same figure
    return pio.to_html(pio.from_json(text), include_plotlyjs=False, full_html=False, div_id=div)

def for_page(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    "The cells a reader sees: no `#| hide` cells, no directive lines, no cell left empty; plotly JSON drawn."
    cells = []
    for c in nb.cells:
        if c.cell_type == 'code':
            if HIDE.search(c.source): continue
            c.source = '\n'.join(ln for ln in c.source.splitlines() if not DIRECTIVE.match(ln)).strip('\n')
            if not c.source.strip() and not c.get('outputs'): continue
            for o in c.get('outputs', []):
                if PLOTLY in o.get('data', {}): o['data'] = {'text/html': plotly_html(o['data'][PLOTLY])}
        cells.append(c)
    nb.cells = cells
    return nb

def page_name(nb_path: Path, nbs: Path) -> str:
    """The page's file name: the notebook's path under nbs/ with `/` as `.`
    (`ops/daily_run.ipynb` -> `ops.daily_run.html`)."""
    return nb_path.resolve().relative_to(nbs.resolve()).with_suffix('.html').as_posix().replace('/', '.')

def nav(pages: list[Page], i: int) -> str:
    "The line of links above and below a chapter: previous, index, next."
    links = [f'[← {pages[i - 1].title}]({pages[i - 1].name})'] if i else []
    links.append('[index](index.html)')
    if i + 1 < len(pages): links.append(f'[{pages[i + 1].title} →]({pages[i + 1].name})')
    return ' · '.join(links)

def chapters_table(pages: list[Page]) -> str:
    "The index's list of chapters: a markdown table linking each page, with its summary."
    rows = [f'| [{p.source.stem}]({p.name}) | {p.title} | {p.summary.replace("|", "/")} |' for p in pages]
    return '\n'.join(['## Chapters', '', '| notebook | chapter | what it is |', '| --- | --- | --- |', *rows])

def render(nb: nbformat.NotebookNode, title: str, exporter: HTMLExporter) -> str:
    "One page's HTML; plotly.js (one file beside the pages) loaded when the page draws a figure."
    body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title}})
    if 'class="plotly-graph-div"' in body: body = body.replace('</head>',
                                                               '<script src="plotly.min.js"></script>\n</head>', 1)
    return body

def build(notebooks: list[Path], out: Path, nbs: Path) -> list[Page]:
    "Write one page per notebook and index.html into `out`; return the pages in reading order."
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name='lab', exclude_input_prompt=True, exclude_output_prompt=True)
    books = [(p, nbformat.read(p, as_version=4)) for p in notebooks]
    pages = [Page(p, page_name(p, nbs), *title_of(nb, p.stem), 0) for p, nb in books]
    for i, (page, (_, nb)) in enumerate(zip(pages, books)):
        nb = for_page(nb)
        page.outputs = sum(1 for c in nb.cells if c.cell_type == 'code' and c.get('outputs'))
        bar = nav(pages, i)
        nb.cells = [nbformat.v4.new_markdown_cell(bar), *nb.cells, nbformat.v4.new_markdown_cell(bar)]
        (out / page.name).write_text(render(nb, page.title, exporter), encoding='utf-8')
    home = nbs / 'index.ipynb'
    idx = for_page(nbformat.read(home, as_version=4)) if home.is_file() else nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell(f'# {ROOT.name}')])
    idx.cells.insert(1, nbformat.v4.new_markdown_cell(f'[The {len(pages)} chapters ↓](#Chapters)'))
    idx.cells.append(nbformat.v4.new_markdown_cell(chapters_table(pages)))
    (out / 'index.html').write_text(render(idx, title_of(idx, 'index')[0], exporter), encoding='utf-8')
    if any('plotly-graph-div' in (out / p.name).read_text(encoding='utf-8') for p in pages):
        from plotly.offline import get_plotlyjs
        (out / 'plotly.min.js').write_text(get_plotlyjs(), encoding='utf-8')
    return pages

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='*', type=Path, help='notebooks to render (default: every one under nbs/)')
    ap.add_argument('--root', type=Path, default=ROOT, help='project root holding nbs/')
    ap.add_argument('--out', type=Path, help='where the pages go (default: <root>/_docs, emptied first)')
    a = ap.parse_args(argv)
    nbs = a.root / 'nbs'
    paths = a.notebooks or sorted(p for p in nbs.rglob('*.ipynb')
                                  if '.ipynb_checkpoints' not in p.parts and p.name != 'index.ipynb')
    out = a.out or a.root / '_docs'
    if a.out is None and out.exists(): shutil.rmtree(out)     # a page of a notebook since removed must not linger
    pages = build([p.resolve() for p in paths], out, nbs)
    for p in pages: print(f'{p.name:45} {p.outputs:3} cells show output')
    bare = [p.name.removesuffix(".html") for p in pages if not p.outputs]
    print(f'{len(pages)} pages and index.html in {out}' + (f'; no output shown in {len(bare)}: ' + ' '.join(bare)
                                                           if bare else ''))
    return 0

if __name__ == '__main__':
    sys.exit(main())
