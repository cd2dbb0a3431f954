"""The chapter kit: what each glue helper stores, how the formatters write several runs."""

import math

import numpy as np
import pytest
import torch

import optedu
from optedu.instruments import chapter
from optedu.instruments.display import GLUE_PREFIX, pasted


@pytest.fixture
def stored(monkeypatch):
    """The (key, text/plain) pairs that glue calls display, in order."""
    import IPython.display

    calls = []

    def show(bundle, raw, metadata):
        calls.append((metadata["scrapbook"]["name"], bundle[GLUE_PREFIX + "text/plain"]))

    monkeypatch.setattr(IPython.display, "display", show)
    return calls


@pytest.mark.parametrize("store, value, text", [
    (chapter.glue_text, 3, "'3'"), (chapter.glue_text, 0.5, "'0.5'"),
    (chapter.glue_text, "10,000", "'10,000'"),
    (chapter.glue_value, 3, "3"), (chapter.glue_value, True, "True"),
    (chapter.glue_value, 0.5, "'0.5'"), (chapter.glue_value, np.int64(3), "'3'"),
    (chapter.glue_num, 0.004213, "'0.0042'"), (chapter.glue_num, 5, "'5.0'"),
    (chapter.glue_num, "diverged", "'diverged'"),
])
def test_each_glue_helper_stores_its_text(stored, store, value, text):
    store("k", value)
    assert stored == [("k", text)]


def test_glue_value_writes_a_float_for_reading_when_given_digits(stored):
    chapter.glue_value("a", 0.0042137, digits=3)
    chapter.glue_value("b", 7, digits=3)      # an int stays the integer
    assert stored == [("a", "'0.00421'"), ("b", "7")]


def test_prefixed_puts_the_prefix_in_front_and_keeps_defaults_overridable(stored):
    g = chapter.prefixed("sha_", digits=2)
    g("x", 0.123456)
    g("y", 0.123456, digits=4)
    g("z", 0.123456, 3)
    chapter.prefixed("lm_", chapter.glue_text)("n", 12)
    assert stored == [("sha_x", "'0.12'"), ("sha_y", "'0.1235'"), ("sha_z", "'0.123'"),
                      ("lm_n", "'12'")]


@pytest.mark.parametrize("prefix", ["", None])
def test_prefixed_refuses_an_empty_prefix(prefix):
    with pytest.raises(ValueError, match="Invalid prefix"):
        chapter.prefixed(prefix)


def test_prefixed_refuses_a_default_its_store_lacks():
    with pytest.raises(TypeError):
        chapter.prefixed("x_", chapter.glue_text, digits=2)


@pytest.mark.parametrize("store", [chapter.glue_text, chapter.glue_value, chapter.glue_num])
def test_every_helper_keeps_glues_guarantee(stored, store):
    """What any helper stores pastes on the website as the text it was given."""
    store("k", "10,000")
    (_, text), = stored
    assert pasted(text) == "10,000"


@pytest.mark.parametrize("call, expected", [
    (lambda: chapter.value_range([0.212, 0.18]), "0.18–0.21"),
    (lambda: chapter.value_range(np.array([3e-7, 2e-6])), "3.0 × 10⁻⁷–2.0 × 10⁻⁶"),
    (lambda: chapter.value_range([1.0, 2.0], spec=".3f"), "1.000–2.000"),
    (lambda: chapter.value_range([1.0, 2.0], 3, sep=" to "), "1.00 to 2.00"),
    (lambda: chapter.value_range([0.301, 0.298], collapse=True), "0.30"),
    # a value that rounds to zero has no sign: "-0.000" is not a number a reader can use
    (lambda: chapter.value_range([-4e-4, 2e-4], spec=".3f", collapse=True), "0.000"),
    (lambda: chapter.value_range([-4e-4, -0.2], spec="+.3f"), "-0.200–0.000"),
    (lambda: chapter.value_range([0.301, 0.298]), "0.30–0.30"),
    (lambda: chapter.value_range([0.3, math.inf, math.nan], count_nonfinite="diverged"),
     "2 of 3 diverged"),
    (lambda: chapter.value_range([0.3, 0.5], count_nonfinite="diverged"), "0.30–0.50"),
    (lambda: chapter.median_range([3, 1, 2, 10]), "2.5 (1.0–10)"),
    (lambda: chapter.mean_range([3, 1, 2, 10]), "4.0 (1.0–10)"),
    (lambda: chapter.mean_range([0.5, 0.25], spec=".2f", brackets="[]"),
     "0.38 [0.25–0.50]"),
    (lambda: chapter.median_range([1.0, 2.0], 3, sep=" to "), "1.50 (1.00 to 2.00)"),
    (lambda: chapter.median_range([1.0, math.inf], nonfinite="diverged"), "diverged"),
    (lambda: chapter.mean_pm([0.1, 0.2, 0.3]), "0.20 ± 0.1"),
    (lambda: chapter.steps_or_missed(411.6), "412"),
    (lambda: chapter.steps_or_missed(math.inf), "missed"),
    (lambda: chapter.listed([35, 65, 85]), "35, 65 and 85"),
    (lambda: chapter.listed([0.1, 0.05], last=","), "0.1, 0.05"),
    (lambda: chapter.listed([7], last="or"), "7"),
    (lambda: chapter.iqr({"median": 2.0, "q1": 1.955, "q3": 2.5}), "2.00 (IQR 1.96–2.50)"),
    (lambda: chapter.iqr({"median": 2.0, "q1": 1.5, "q3": 2.5}, label=""), "2.00 (1.50–2.50)"),
    (lambda: chapter.setting_label("beta2=0.95"), "β₂ = 0.95"),
    (lambda: chapter.setting_label("lr=3e-4, weight_decay=0.1"), "η = 3 × 10⁻⁴, λ = 0.1"),
    (lambda: chapter.setting_label("eps=1e-8"), "ε = 10⁻⁸"),
    (lambda: chapter.setting_label("qk-norm"), "qk-norm"),
    (lambda: chapter.setting_label("low-lr, z=1e-3", {"low-lr": "η = 0.01", "z": "α"}),
     "η = 0.01, α = 10⁻³"),
])
def test_formatters(call, expected):
    assert call() == expected


@pytest.mark.parametrize("call", [
    lambda: chapter.value_range([]),
    lambda: chapter.median_range([]),
    lambda: chapter.mean_range([1.0], brackets="("),
    lambda: chapter.mean_pm([1.0]),
    lambda: chapter.listed([]),
])
def test_formatters_refuse_bad_input(call):
    with pytest.raises(ValueError, match="Invalid"):
        call()


def test_setup_pins_one_thread_and_the_default_dtype():
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    try:
        torch.set_num_threads(2)
        chapter.setup(torch.float64, figures=False)
        assert torch.get_num_threads() == 1 and torch.get_default_dtype() == torch.float64
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)


def test_regression_run_is_the_chapters_loop():
    """The loop mars_cautious and two_momenta ran, written out once more here."""
    torch.manual_seed(0)
    net = torch.nn.Linear(6, 3).double()
    x = torch.randn(32, 6, dtype=torch.float64)
    y = torch.randn(32, 3, dtype=torch.float64)
    opt = optedu.Adam(net.parameters(), lr=0.01)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    expected = torch.cat([p.detach().flatten() for p in net.parameters()])
    got = chapter.regression_run(lambda p: optedu.Adam(p, lr=0.01))
    assert got.dtype == torch.float64 and torch.equal(got, expected)
    other = chapter.regression_run(lambda p: optedu.Adam(p, lr=0.01), steps=29)
    assert not torch.equal(other, expected)


def test_the_docstring_examples():
    import doctest

    assert doctest.testmod(chapter).failed == 0


def test_stream_path_feeds_the_given_gradients():
    """SGD with lr 0.5 moves by -0.5 g per step: the path is the running sum."""
    grads = torch.tensor([[1.0, -2.0], [0.5, 0.0], [-1.0, 4.0]], dtype=torch.float64)
    path = chapter.stream_path(lambda p: optedu.SGD(p, lr=0.5), grads)
    expected = torch.cat([torch.zeros(1, 2, dtype=torch.float64),
                          -0.5 * grads.cumsum(0)])
    assert path.shape == (4, 2) and torch.equal(path, expected)
