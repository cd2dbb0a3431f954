"""optedu.instruments.source: the code a chapter shows, its docstring as Markdown with maths."""

import inspect
import re

import pytest

import optedu
from optedu.training import clip
from optedu.instruments.source import Source, docstring_markdown, show_source, split_source

RULES = [optedu.sgd, optedu.adam, optedu.adagrad, optedu.rmsprop, optedu.adafactor,
         optedu.radam, optedu.adadelta, clip.clip_grad_norm_]


def test_math_block_and_roles():
    doc = '''One step, in place; ``step`` counts from 1.

    .. math::

        m_t &\\leftarrow \\beta_1 m_{t-1} \\\\
        \\theta_t &\\leftarrow \\theta_{t-1}

    with :math:`\\eta` the rate; see :func:`optedu.adam`.
    '''
    md = docstring_markdown(doc)
    assert md == ("One step, in place; `step` counts from 1.\n\n"
                  "$$\n\\begin{aligned}\nm_t &\\leftarrow \\beta_1 m_{t-1} \\\\\n"
                  "\\theta_t &\\leftarrow \\theta_{t-1}\n\\end{aligned}\n$$\n\n"
                  "with $\\eta$ the rate; see `optedu.adam`.")


def test_sections_literal_blocks_and_doctests():
    doc = '''Clip.

    Args:
        max_norm: the threshold :math:`\\tau`, not
            validated.
        foreach: ignored.
        start_lr, end_lr: the first and last
            multipliers.

    Returns:
        The norm before clipping.

    Use it so::

        clip(x)

    >>> 1 + 1
    2
    '''
    md = docstring_markdown(doc)
    assert "**Args**\n\n- `max_norm`: the threshold $\\tau$, not validated.\n- `foreach`: ignored." \
        "\n- `start_lr, end_lr`: the first and last multipliers." in md  # names shared
    assert "**Returns**\n\n- The norm before clipping." in md
    assert "Use it so:\n\n```\nclip(x)\n```" in md
    assert "```python\n>>> 1 + 1\n2\n```" in md


@pytest.mark.parametrize("rule", RULES, ids=lambda f: f.__qualname__)
def test_the_book_s_rules_show_no_rest(rule):
    """What a reader sees: no reST directive or role left, the code without its docstring,
    every line of the source in one of the two parts."""
    shown = Source(rule)
    assert shown.doc is not None
    assert not re.search(r"\.\. \w+::|:(math|func|class|meth|data):`|``", shown.doc), shown.doc
    assert shown.doc.count("$$") % 2 == 0 and shown.doc.count("```") % 2 == 0
    code, doc = split_source(rule)
    assert '"""' not in code and "def " in code
    assert inspect.getdoc(rule) == inspect.cleandoc(doc)
    assert shown.text == inspect.getsource(rule).rstrip("\n")
    assert shown.markdown().endswith("```") and "```python\n" + code in shown.markdown()


def test_code_without_its_own_docstring_is_shown_as_code_only():
    shown = Source(optedu.Adagrad.init_state)  # its docstring is inherited, not in its source
    assert shown.doc is None and shown.markdown() == f"```python\n{shown.text}\n```"


def test_show_source_outside_ipython_prints_the_source(capsys):
    show_source(optedu.sgd)
    assert capsys.readouterr().out == inspect.getsource(optedu.sgd)
