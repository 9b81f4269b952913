"""
One implementation per idea: the attention a reader studies on a paper page is the attention that runs.
Read from the sources' syntax trees, not their text: the attention weights are computed on the paper pages
and again only on the named fast pages; the paper pages import no fast page when they are imported; every
fast page is the fast form of a paper page that names it; nothing in the package calls PyTorch's private
APIs.
"""
import ast
from pathlib import Path
from typing import Iterator, List, Set, Tuple

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "labml_nn"

pytestmark = pytest.mark.checks("labml_nn/transformers/mha.py", "labml_nn/transformers/lm.py",
                                "labml_nn/transformers/xl/generation.py", "labml_nn/transformers/feedback/step.py")

# Where attention weights over keys are computed: the paper pages, and the pages named as fast forms.
PAPER_ATTENTION = {"transformers/mha.py",                # every model's attention (XL's relative scores feed it)
                   "transformers/compressive/__init__.py"}  # the attention-reconstruction loss of the paper
FAST_ATTENTION = {"transformers/xl/generation.py",       # one position at a time, fused attention
                  "transformers/feedback/step.py"}       # the exact model's hand-written step

# Each fast page and the paper page whose model it speeds up (which must name it, and which it imports).
FAST_PAGES = {"transformers/xl/generation.py": "transformers/xl/__init__.py",
              "transformers/compressive/generation.py": "transformers/compressive/__init__.py",
              "transformers/feedback/generation.py": "transformers/feedback/__init__.py",
              "transformers/feedback/step.py": "transformers/feedback/__init__.py"}
# Shared by the fast pages; no paper page imports it either.
FAST_SHARED = {"transformers/one_token.py"}


def sources() -> List[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def module_name(page: str) -> str:
    """`transformers/xl/__init__.py` → `labml_nn.transformers.xl`."""
    parts = ["labml_nn", *Path(page).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tree(page: str) -> ast.Module:
    return ast.parse((PACKAGE / page).read_text())


def dotted(node: ast.AST) -> str:
    """`torch.nn.functional.softmax` for an attribute chain (empty when it does not end in a name)."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def module_imports(module: ast.Module) -> Set[str]:
    """The modules imported by the statements that run when the module is imported (not inside functions)."""
    found = set()
    for node in module.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def attention_weights(module: ast.Module) -> Iterator[int]:
    """
    Lines that compute attention weights over keys: a softmax over the last dimension (`x.softmax(dim=-1)`,
    `F.softmax(x, -1)`, `torch.softmax(x, dim=-1)`, ...) or PyTorch's fused attention. (The Feedback
    Transformer's softmax of its layer weights is over dimension 0: not attention.)
    """
    for node in ast.walk(module):
        if not isinstance(node, ast.Call):
            continue
        name = dotted(node.func) if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        last = name.rsplit(".", 1)[-1] if name else getattr(node.func, "attr", "")
        if last == "scaled_dot_product_attention":
            yield node.lineno
        elif last in ("softmax", "log_softmax"):
            # A method call takes dim first; `F.softmax(x, dim)` and `torch.softmax(x, dim)` second.
            method = isinstance(node.func, ast.Attribute) and name.split(".")[0] not in ("F", "torch", "functional")
            positional = node.args[0 if method else 1:]
            dims = [k.value for k in node.keywords if k.arg == "dim"] + positional[:1]
            if any(isinstance(d, ast.UnaryOp) and isinstance(d.op, ast.USub) and getattr(d.operand, "value", None) == 1
                   for d in dims):
                yield node.lineno


def test_the_attention_detector_finds_every_form_of_a_softmax_over_keys():
    forms = ["a = s.softmax(dim=-1)", "a = s.softmax(-1)", "a = F.softmax(s, -1)", "a = F.softmax(s, dim=-1)",
             "a = torch.softmax(s, dim=-1)", "a = torch.nn.functional.softmax(s, -1)",
             "o = F.scaled_dot_product_attention(q, k, v)", "a = (q @ k).softmax(dim=-1)"]
    for form in forms:
        assert list(attention_weights(ast.parse(form))) == [1], form
    for other in ["w = self.layer_weights.softmax(dim=0)", "w = F.softmax(w, 0)", "y = x.sum(dim=-1)"]:
        assert list(attention_weights(ast.parse(other))) == [], other


def test_attention_weights_are_computed_only_on_the_paper_pages_and_the_named_fast_pages():
    found = {relative(p): lines for p in sources() if (lines := list(attention_weights(ast.parse(p.read_text()))))}
    assert set(found) == PAPER_ATTENTION | FAST_ATTENTION, found


def test_paper_pages_import_no_fast_page_when_they_are_imported():
    fast = {module_name(page) for page in set(FAST_PAGES) | FAST_SHARED}
    for path in sources():
        page = relative(path)
        if page in FAST_PAGES or page in FAST_SHARED or not page.startswith("transformers/"):
            continue
        imported = module_imports(ast.parse(path.read_text()))
        assert not imported & fast, (page, imported & fast)


def test_each_fast_page_imports_its_paper_page_which_names_it():
    for page, paper in FAST_PAGES.items():
        assert module_name(paper) in module_imports(tree(page)), page
        # The paper page names the fast page: a string (`generation_page`) or an import inside the method
        # that dispatches to it, never at module level.
        names = {node.value for node in ast.walk(tree(paper)) if isinstance(node, ast.Constant)}
        names |= {node.module for node in ast.walk(tree(paper)) if isinstance(node, ast.ImportFrom)}
        assert module_name(page) in names, (paper, page)


def test_the_models_name_fast_pages_that_hold_a_cached_reader():
    import importlib

    from labml_nn.transformers.compressive import CompressiveTransformer
    from labml_nn.transformers.feedback import FeedbackTransformer
    from labml_nn.transformers.xl import TransformerXL
    common = dict(num_tokens=5, dim=8, depth=1, heads=2, mem_len=2)
    models = [TransformerXL(**common), CompressiveTransformer(**common, cmem_len=2), FeedbackTransformer(**common)]
    for model in models:
        assert hasattr(importlib.import_module(model.generation_page), "CachedReader"), model.generation_page
    # The absolute-position ablation has no fast page: it generates through its own forward pass.
    assert TransformerXL(**common, positions="absolute").generation_page is None


def private_torch_uses(module: ast.Module) -> Iterator[Tuple[int, str]]:
    private = ("torch._C", "torch.ops", "torch._dynamo", "torch._inductor")
    for node in ast.walk(module):
        names = []
        if isinstance(node, ast.Attribute):
            names = [dotted(node)]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "aten::" in node.value:
            names = ["aten::"]
        for name in names:
            if name == "aten::" or any(name == p or name.startswith(p + ".") for p in private):
                yield node.lineno, name


def test_the_private_api_detector_finds_attributes_imports_and_op_names():
    for form in ["torch._C._set_grad_enabled(True)", "import torch._dynamo", "from torch._inductor import config",
                 "torch.ops.aten.mm(a, b)", "x = 'aten::mm'"]:
        assert list(private_torch_uses(ast.parse(form))), form
    assert not list(private_torch_uses(ast.parse("torch.compiler.is_compiling()")))


def test_no_source_calls_private_torch_apis():
    found = [f"{relative(p)}:{line}: {name}" for p in sources()
             for line, name in private_torch_uses(ast.parse(p.read_text()))]
    assert found == []


@pytest.mark.checks("labml_nn/transformers/xl/__init__.py", "labml_nn/transformers/compressive/__init__.py",
                    "labml_nn/transformers/feedback/__init__.py")
def test_each_model_page_is_mostly_its_paper():
    # Counted by scripts/paper_lines.py (code lines that are neither blank, docstrings nor comments; imports,
    # validation, the shell's parts, memory bookkeeping for the trainer, FLOP counting and generation are
    # machinery): at least 70% of each model page's code is the paper.
    from scripts.paper_lines import count
    for page in ("transformers/xl/__init__.py", "transformers/compressive/__init__.py",
                 "transformers/feedback/__init__.py"):
        total, machinery = count((PACKAGE / page).read_text())
        assert (total - machinery) / total >= 0.7, (page, total, machinery)
