"""Issue 18, item 7 (pages): Chinese description lines, 矩阵乘法 for a matrix product, code spans verbatim."""
import re

from symgrad.explanation import explain, explainable
from symgrad.registry import REGISTRY

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_description_line_is_translated():
    for name in explainable():
        zh = explain(name, lang="zh").doc
        first = zh.blocks[0].parts[0]
        en_first = (REGISTRY.get(name).doc or "").strip().splitlines()[0]
        assert CJK.search(first) and first != en_first, name


def test_matrix_product_is_called_matrix_multiplication():
    md = explain("dense", lang="zh").markdown()
    assert "矩阵乘法" in md
    for name in explainable():
        md = explain(name, lang="zh").markdown()
        assert "缩并" not in md and "核函数" not in md, name


def test_code_spans_are_verbatim():
    for name in explainable():
        for lang in ("en", "zh"):
            md = explain(name, lang=lang).markdown()
            spans = re.findall(r"`([^`\n]+)`", md)
            assert spans and not [s for s in spans if "\\_" in s], (name, lang)
    assert "`symgrad explain dense_sigmoid`" in explain("dense_sigmoid").markdown()
