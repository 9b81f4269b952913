"""The check pass: every link and anchor of the built site resolves and nothing loads from another
host; a broken link fails the build with the source file and line where it is written."""
from __future__ import annotations

import pytest

from conftest_site import build_fails, fixture_repo, need_katex
from utils.build import build
from utils.check import PageReader, check_site
from utils.errors import SiteError


def test_broken_link_fails_with_source_file_and_line(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/readme.md": "# Readme\n\nA\n[missing](nowhere.md).\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 4)
    assert "nowhere.md" in str(error)


def test_broken_anchor_fails_with_file_and_line(tmp_path):
    error = build_fails(tmp_path, {"labml_nn/paper/readme.md": "# Readme\n\n[x](attention.html#Attention.backward)\n"})
    assert (error.path, error.line) == ("labml_nn/paper/readme.md", 3)
    assert 'no element with id "Attention.backward"' in str(error)


def test_checker_rejects_remote_resources_and_missing_anchors(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><body>\n<a href="https://arxiv.org/abs/1901.02860">ok</a>\n'
        '<script src="https://cdn.example.com/x.js"></script>\n'
        '<a href="#here" id="here">ok</a>\n<a href="#gone">bad</a>\n'
        '<link rel="stylesheet" href="//fonts.example.com/f.css">\n'
        '<img src="missing.png" srcset="here.png 1x, //cdn.example.com/big.png 2x">\n</body></html>\n')
    (tmp_path / "here.png").write_text("png")
    with pytest.raises(SiteError) as e:
        check_site(tmp_path)
    lines = str(e.value).splitlines()
    assert lines == [
        'a.html:3: <script src="https://cdn.example.com/x.js"> loads from another host; copy the file into utils/static/ instead',
        'a.html:5: <a href="#gone">: no element with id "gone" in a.html',
        'a.html:6: <link href="//fonts.example.com/f.css"> loads from another host; copy the file into utils/static/ instead',
        'a.html:7: <img src="missing.png">: no such file missing.png',
        'a.html:7: <img srcset="//cdn.example.com/big.png"> loads from another host; copy the file into utils/static/ instead',
    ]


def test_the_reader_is_an_html_parser_not_a_pattern():
    """What a scanner of `<tag attr="...">` gets wrong: a `>` inside a quoted value, unquoted and
    single-quoted values, entities, markup inside comments and scripts, tags split over lines."""
    reader = PageReader('<p title="a > b" id=first>x</p>\n<!-- <a href="gone.html"> -->\n'
                        "<script>if (a<b) document.write('<a href=\"x.html\">')</script>\n"
                        "<a\n  href='two.html?a=1&amp;b=2'\n  name=n2>y</a>"
                        '<div style="background: url(&quot;bg.png&quot;)"></div>')
    assert reader.ids == {"first", "n2"}
    assert reader.refs == [("a", "href", "two.html?a=1&b=2", 4), ("div", "style", "bg.png", 6)]


def test_stylesheets_are_checked_for_their_urls(tmp_path):
    (tmp_path / "a.html").write_text('<link rel="stylesheet" href="s.css">')
    (tmp_path / "s.css").write_text('.a { background: url("ok.png"); }\n.b { background: url(gone.png); }\n'
                                    '@import url(https://fonts.example.com/x.css);\n')
    (tmp_path / "ok.png").write_text("png")
    with pytest.raises(SiteError) as e:
        check_site(tmp_path)
    assert str(e.value).splitlines() == ["s.css:2: url(gone.png) is missing",
                                         "s.css:3: url(https://fonts.example.com/x.css) loads from another host"]
