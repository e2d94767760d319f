"""Issue 18, item 6: a self-contained web page per derivation (MathML, SVG inline, no network, no JS),
an index in English and Chinese, and a headless-Chromium screenshot that shows the MathML laid out."""
import re
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from symgrad.cli import main
from symgrad.explanation import explain, explainable
from symgrad.explanation.graph import to_svg
from symgrad.explanation.html import math, to_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _page(name="layernorm", lang="en"):
    doc = explain(name, lang=lang).doc
    return to_html(doc, to_svg(doc))


def test_html_is_one_self_contained_page():
    page = _page()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 1 and page.count("<math") > 30
    assert "<script" not in page.lower() and "<link" not in page.lower() and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)      # nothing fetched from the network
    assert "<mfrac>" in page and "<msub>" in page                         # MathML from SymPy's printer
    assert '<mi mathvariant="normal">rstd</mi>' in page                    # multi-letter names upright
    assert "<mtext>" not in math(explain("dense").doc.equations("final")[0].rhs)
    zh = _page("lstm", "zh")
    assert 'lang="zh-CN"' in zh and "链式法则" in zh


def test_cli_html_and_site(tmp_path):
    out = tmp_path / "dense.html"
    r = CliRunner().invoke(main, ["explain", "dense", "--format", "html", "--out", str(out)])
    assert r.exit_code == 0 and "<math" in out.read_text(encoding="utf-8")
    site = tmp_path / "site"
    r = CliRunner().invoke(main, ["explain", "--all", "--site", str(site)])
    assert r.exit_code == 0, r.output
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in explainable():
        assert f'href="{name}.html"' in index and f'href="{name}.zh.html"' in index
        assert (site / f"{name}.html").is_file() and (site / f"{name}.zh.html").is_file()
    assert "中文" in index and "English" in index


def _shot(tmp_path, html, name, size="900,1200"):
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    png = tmp_path / f"{name}.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / ('profile-' + name)}", f"--window-size={size}",
                    f"--screenshot={png}", page.as_uri()], capture_output=True, timeout=120, check=False)
    import matplotlib.image
    img = matplotlib.image.imread(str(png))[..., :3]
    return img.mean(axis=2)


def _ink_height(gray) -> int:
    rows = np.where((gray < 0.6).any(axis=1))[0]
    return int(rows.max() - rows.min() + 1) if rows.size else 0


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (.ci/run installs Debian's chromium)")
def test_chromium_screenshot_is_not_blank_and_mathml_is_laid_out(tmp_path):
    gray = _shot(tmp_path, _page(), "layernorm")
    assert gray.std() > 0.05 and (gray < 0.5).mean() > 0.01              # not a blank page
    doc = explain("layernorm").doc
    frac = next(e for e in doc.equations("forward") if e.defines == "mean")       # mean = s / D
    style = "<style>body{margin:40px;font-size:60px}</style>"
    mathml = math(frac.rhs, display=True)
    assert "<mfrac>" in mathml
    h_frac = _ink_height(_shot(tmp_path, f"<!DOCTYPE html><html><head>{style}</head><body>{mathml}</body></html>",
                               "fraction", "600,600"))
    h_line = _ink_height(_shot(tmp_path, f"<!DOCTYPE html><html><head>{style}</head><body><p>sD</p></body></html>",
                               "line", "600,600"))
    # laid out as MathML, s sits above D; unsupported MathML would run "s D" along one line
    assert h_line > 10 and h_frac > 1.6 * h_line, (h_frac, h_line)
