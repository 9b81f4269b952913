"""The splitter: prose and code sections, real line numbers, and the no-line-lost invariant."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from utils.errors import SiteError
from utils.split import reconstruct, split_source

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "labml_nn").rglob("*.py"))


def split(text: str):
    source = textwrap.dedent(text).lstrip("\n")
    module = split_source(source, "t.py")
    assert reconstruct(module) == source
    return module


def code_rows(section):
    return [n for n, _ in section.code]


def by_anchor(module, anchor):
    return next(s for s in module.sections if s.anchor == anchor)


def check_invariant(source: str, module) -> None:
    """Every line is in exactly one section, as code or as prose, at its real line number."""
    rows = [n for s in module.sections for n, _ in s.code + s.moved]
    assert sorted(rows) == list(range(1, len(source.splitlines()) + 1))
    lines = source.splitlines(keepends=True)
    for s in module.sections:
        for n, text in s.code + s.moved:
            assert lines[n - 1] == text
    assert reconstruct(module) == source


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_real_source_is_reconstructed_exactly(path):
    source = path.read_text(encoding="utf-8")
    check_invariant(source, split_source(source, str(path)))


def test_module_docstring_is_intro_with_front_matter():
    m = split('''
        r"""
        ---
        title: T
        summary: S
        ---

        # Heading $\\alpha$
        """
        import os
    ''')
    assert m.front_matter == {"title": "T", "summary": "S"}
    intro = m.sections[0]
    assert intro.intro and not intro.code
    assert "# Heading $\\alpha$" in intro.prose[0].text and "title" not in intro.prose[0].text
    assert code_rows(m.sections[1]) == [9]


def test_docstring_sits_beside_its_def_and_keeps_line_numbers():
    m = split('''
        def f(x):
            """Doc
            on two lines."""
            return x
    ''')
    s = by_anchor(m, "f")
    assert [p.kind for p in s.prose] == ["docstring"]
    assert s.prose[0].text == "Doc\non two lines."
    assert code_rows(s) == [1, 4]
    assert [n for n, _ in s.moved] == [2, 3]


def test_comment_right_above_decorated_def_joins_its_section():
    m = split('''
        import functools


        # Cached, because it is slow.
        @functools.lru_cache()
        @other
        def slow(n):
            return n
    ''')
    s = by_anchor(m, "slow")
    assert s.prose[0].text == "Cached, because it is slow."
    assert code_rows(s) == [5, 6, 7, 8]


def test_comment_separated_by_blank_line_is_its_own_section():
    m = split('''
        # A note about what follows.

        def f():
            pass
    ''')
    assert m.sections[0].prose[0].text == "A note about what follows." and m.sections[0].anchor is None
    assert code_rows(by_anchor(m, "f")) == [3, 4]


def test_hash_inside_strings_and_multiline_strings_is_code():
    m = split('''
        x = "# not a comment"
        y = """
        # not a comment either
        """
        z = 1  # a trailing comment stays in the code
    ''')
    assert all(not s.prose for s in m.sections)
    assert sum(len(s.code) for s in m.sections) == 5


def test_multiline_string_that_is_not_a_docstring_stays_code():
    m = split('''
        def f():
            x = 1
            """Not a docstring: not the first statement."""
            return x
    ''')
    s = by_anchor(m, "f")
    assert not s.prose and code_rows(s) == [1, 2, 3, 4]


def test_methods_and_nested_classes_get_qualified_anchors():
    m = split('''
        class Model:
            """The model."""

            class Config:
                pass

            def forward(self, x):
                """Forward."""
                return x

            async def run(self):
                pass
    ''')
    anchors = [s.anchor for s in m.sections if s.anchor]
    assert anchors == ["Model", "Model.Config", "Model.forward", "Model.run"]
    assert by_anchor(m, "Model.forward").kind == "method"


def test_nested_function_without_prose_stays_in_its_parent():
    m = split('''
        def outer():
            def inner():
                return 1
            return inner()
    ''')
    assert [s.anchor for s in m.sections if s.anchor] == ["outer"]
    assert "outer.inner" in by_anchor(m, "outer").names


def test_nested_function_with_docstring_gets_a_section():
    m = split('''
        def outer():
            def inner():
                """Inner."""
                return 1
            return inner()
    ''')
    assert by_anchor(m, "outer.inner").prose[0].text == "Inner."


def test_comments_inside_brackets_and_signatures_stay_code():
    m = split('''
        def f(a,
              # about b
              b):
            return g(a,
                     # about the second argument
                     b)
    ''')
    assert not any(s.prose for s in m.sections)


def test_comment_first_in_a_body_is_prose_but_signature_comments_are_code():
    m = split('''
        @decorator  # about the decorator
        # between decorator and def: part of the header
        def f(x):  # on the def line
            # The first step.
            return x
    ''')
    assert [p.text for s in m.sections for p in s.prose] == ["The first step."]
    assert code_rows(m.sections[-1]) == [5]


def test_comment_inside_a_body_starts_a_section():
    m = split('''
        def f(x):
            y = x + 1
            # Now the interesting part: $y^2$.
            return y * y
    ''')
    s = m.sections[-1]
    assert s.prose[0].text == "Now the interesting part: $y^2$." and code_rows(s) == [4]


def test_docstring_sharing_a_line_with_code_stays_code():
    m = split('''
        def f(): "inline doc"; return 1
        class C: """doc"""
    ''')
    assert not any(s.prose for s in m.sections)


def test_duplicate_names_get_distinct_anchors():
    m = split('''
        class C:
            @property
            def x(self):
                return 1

            @x.setter
            def x(self, value):
                pass
    ''')
    assert [s.anchor for s in m.sections if s.anchor] == ["C", "C.x", "C.x-2"]


def test_raw_docstring_keeps_backslashes():
    m = split('''
        def f():
            r"""$\\mathbf{A}^{rel}_{i,j}$ and \\n stay as written."""
    ''')
    assert m.sections[0].prose[0].text == "$\\mathbf{A}^{rel}_{i,j}$ and \\n stay as written."


def test_non_raw_docstring_with_backslash_fails_with_file_and_line():
    source = 'import os\n\n\ndef f():\n    """Fine line.\n\n    $\\alpha$ is lost.\n    """\n'
    with pytest.raises(SiteError) as e:
        split_source(source, "labml_nn/x.py")
    assert e.value.path == "labml_nn/x.py" and e.value.line == 7
    assert str(e.value).startswith("labml_nn/x.py:7:") and 'r"""' in str(e.value)


def test_non_raw_module_docstring_with_backslash_fails():
    with pytest.raises(SiteError, match=r"^m.py:1:"):
        split_source('"""$\\beta$"""\n', "m.py")


def test_crlf_and_missing_final_newline_are_kept():
    source = '# c\r\ndef f():\r\n    """d"""\r\n    return 1'
    check_invariant(source, split_source(source))


# -- generated sources ---------------------------------------------------------------------------

names = st.sampled_from(["alpha", "beta", "forward", "Model", "_private", "x"])
texts = st.sampled_from(["plain words", "math $x_i$ and $a*b*c$", "a # hash", "", "`code` # x"])


@st.composite
def blocks(draw, indent: str = "", depth: int = 0):
    kind = draw(st.sampled_from(["comment", "def", "class", "assign", "string", "blank"]
                                if depth < 2 else ["comment", "assign", "string", "blank"]))
    name = draw(names)
    if kind == "comment":
        return "".join(f"{indent}# {draw(texts)}\n" for _ in range(draw(st.integers(1, 3))))
    if kind == "assign":
        return f"{indent}{name} = ({draw(st.integers())},  # {draw(texts)}\n{indent}    # inside\n{indent}    1)\n"
    if kind == "string":
        return f'{indent}{name} = """\n# {draw(texts)}\n"""\n'
    if kind == "blank":
        return "\n"
    header = ""
    if draw(st.booleans()):
        header += f"{indent}# {draw(texts)}\n"
    if draw(st.booleans()):
        header += f"{indent}@decorator\n"
    line = f"{indent}def {name}(self, a=1):\n" if kind == "def" else f"{indent}class {name}(Base):\n"
    inner = indent + "    "
    body = ""
    if draw(st.booleans()):
        quote = draw(st.sampled_from(['r"""', '"""', "r'''", "'"]))
        close = quote.lstrip("r")
        doc = draw(texts).replace("\\", "")
        body += f"{inner}{quote}{doc}{close}\n" if close == "'" else f"{inner}{quote}{doc}\n{inner}more{close}\n"
    body += "".join(draw(st.lists(blocks(inner, depth + 1), max_size=3)))
    body += f"{inner}pass\n"
    return header + line + body


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(blocks(), max_size=8), st.booleans(), st.booleans())
def test_generated_sources_are_reconstructed_exactly(parts, module_doc, strip_final_newline):
    source = ('r"""\n---\ntitle: t\n---\n# Doc\n"""\n' if module_doc else "") + "".join(parts)
    if strip_final_newline:
        source = source.rstrip("\n")
    check_invariant(source, split_source(source))
