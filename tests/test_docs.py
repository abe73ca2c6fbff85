"""tools/make_docs.py (`make docs`): a chapter's page shows its kept outputs, leaves out what nbdev hides, and
the index links it; a plotly figure kept as JSON is drawn with plotly.js beside the pages."""
import html, json, re, subprocess, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / 'tools' / 'make_docs.py'
CHAPTER = ROOT / 'nbs' / '27_models_signals.ipynb'

def _run(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r

def _texts(nb: dict) -> list[str]:
    "Every kept plain-text output line of a stored notebook (not the text beside an HTML table: the table shows)."
    out = []
    for c in nb['cells']:
        for o in c.get('outputs', []):
            if 'text/html' in o.get('data', {}): continue
            text = ''.join(o.get('text', '')) or ''.join(o.get('data', {}).get('text/plain', ''))
            out += [ln.strip() for ln in text.splitlines() if ln.strip()]
    return out

def test_chapter_page_shows_its_outputs(tmp_path):
    r = _run('--out', str(tmp_path), str(CHAPTER))
    page = (tmp_path / '27_models_signals.html').read_text(encoding='utf-8')
    kept = _texts(json.loads(CHAPTER.read_text()))
    assert kept, 'the chapter keeps outputs'
    shown = html.unescape(re.sub(r'<[^>]+>', '', page))
    assert [t for t in kept if t not in shown] == []                 # every kept output is on the page
    assert '<table' in page and 'dataframe' in page                  # the tables kept as HTML too
    assert '#| export' not in shown and 'default_exp' not in shown   # directives are not shown
    assert 'def forecast_to_signal' in shown                        # the code is
    assert 'href="index.html"' in page
    assert 'plotly-graph-div' in page and (tmp_path / 'plotly.min.js').is_file()   # the kept reliability chart is drawn
    index = (tmp_path / 'index.html').read_text(encoding='utf-8')
    assert 'href="27_models_signals.html"' in index and 'From forecast to signal' in index
    assert '27_models_signals.html' in r.stdout and 'cells show output' in r.stdout

def test_hidden_cells_and_plotly_json(tmp_path):
    import plotly.graph_objects as go
    fig = json.loads(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).to_json())
    cells = [nbformat.v4.new_markdown_cell('# A chapter\n\n> what it is'),
             nbformat.v4.new_code_cell('#| hide\nsecret_setup = 1'),
             nbformat.v4.new_code_cell('#| export\ndef shown(): pass'),
             nbformat.v4.new_code_cell('fig', outputs=[nbformat.v4.new_output(
                 'execute_result', data={'application/vnd.plotly.v1+json': fig, 'text/plain': 'Figure'})])]
    (tmp_path / 'nbs').mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / 'nbs' / '01_a.ipynb')
    _run('--root', str(tmp_path))
    page = (tmp_path / '_docs' / '01_a.html').read_text(encoding='utf-8')
    text = html.unescape(re.sub(r'<[^>]+>', '', page))
    assert 'secret_setup' not in page and 'def shown(): pass' in text and '#| export' not in text
    assert 'plotly-graph-div' in page and '<script src="plotly.min.js">' in page
    assert (tmp_path / '_docs' / 'plotly.min.js').stat().st_size > 100_000
    index = (tmp_path / '_docs' / 'index.html').read_text(encoding='utf-8')
    assert 'href="01_a.html"' in index and 'what it is' in index
