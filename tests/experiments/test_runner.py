"""The framework (optedu.experiments.grid, .runner) on a small grid in a temporary folder: a
grid runs what its file lacks and resumes, a plan that grows with its results runs until
complete, a record whose key is not its job's is refused, the data folder is resolved from the
environment or the repository, and the listing comes from the declarations."""

from __future__ import annotations

import json

import pytest
import torch

from optedu.experiments import grid as grids
from optedu.experiments import runner
from optedu.instruments import reproducible, store

KEY = grids.Key("kind", "n")


def _jobs(stored, folder):
    """Three squares, then the cube of the largest square once all three are stored."""
    out = [KEY("square", n) for n in range(3)]
    squares = [r["value"] for r in stored if r["kind"] == "square"]
    if len(squares) == 3:
        out.append(KEY("cube", max(squares)))
    return out


def _execute(job):
    power = 2 if job.kind == "square" else 3
    return {"kind": job.kind, "n": job.n, "value": job.n ** power, "seconds": 0.0}


def _grid(**changes):
    fields = dict(name="demo", chapter="A demo", about="squares, then a cube.", minutes=0.1,
                  file="demo.jsonl", job=KEY, jobs=_jobs, execute=_execute)
    return grids.Grid(**{**fields, **changes})


@pytest.fixture
def quiet(monkeypatch):
    """The runner's settings without pinning this process's kernels or threads for good."""
    monkeypatch.setattr(reproducible, "pin_cpu_kernels", lambda: {})
    monkeypatch.setattr(runner, "pin_cpu_kernels", lambda: {})
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_grid_runs_what_is_missing_and_resumes(tmp_path, quiet):
    grid = _grid()
    meta = runner.run(grid, tmp_path)
    assert meta["ran_now"] == 4 and meta["runs"] == 4 and meta["grid"] == "demo"
    assert [r["value"] for r in grid.read(tmp_path)] == [0, 1, 4, 64]
    assert runner.run(grid, tmp_path)["ran_now"] == 0
    lines = (tmp_path / "demo.jsonl").read_text().splitlines()
    (tmp_path / "demo.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:5])
    meta = runner.run(grid, tmp_path)          # the cut line is dropped and run again
    assert meta["ran_now"] == 2 and [r["value"] for r in grid.read(tmp_path)] == [0, 1, 4, 64]
    sessions = json.loads((tmp_path / "demo.meta.json").read_text())["sessions"]
    assert [s["ran"] for s in sessions] == [4, 2]
    assert runner.rerun(grid, [("cube", 4), ("square", 2)], tmp_path) == [
        _execute(KEY("cube", 4)), _execute(KEY("square", 2))]
    with pytest.raises(ValueError, match=r"Invalid key: \('cube', 5\) is not in the plan"):
        runner.rerun(grid, [("cube", 5)], tmp_path)


def test_a_record_under_another_key_is_refused(tmp_path, quiet):
    grid = _grid(execute=lambda job: {**_execute(job), "n": job.n + 1})
    with pytest.raises(ValueError, match=r"Invalid record: key \('square', 1\) for the job "
                                         r"\('square', 0\) of demo"):
        runner.run(grid, tmp_path)


def test_keys_build_jobs_and_refuse_bad_values():
    job = KEY("square", n=3, inputs={"hyper": {"lr": 0.1}})
    assert (job.key, job.kind, job.n, job.hyper) == (("square", 3), "square", 3, {"lr": 0.1})
    assert job == KEY("square", 3) and job.asdict() == {"kind": "square", "n": 3}
    assert KEY.of({"n": 3, "kind": "square", "value": 9}) == job.key
    with pytest.raises(AttributeError, match="no field 'lr'"):
        job.lr
    with pytest.raises(TypeError, match="missing values"):
        KEY("square")
    with pytest.raises(TypeError, match="Invalid field: 'm'"):
        KEY("square", m=3)

    def positive(job):
        if job.n < 0:
            raise ValueError(f"Invalid n: {job.n}")
    with pytest.raises(ValueError, match="Invalid n: -1"):
        grids.Key("kind", "n", check=positive)("square", -1)


def test_the_data_folder_is_passed_or_resolved(tmp_path, monkeypatch):
    assert store.folder(tmp_path) == tmp_path
    monkeypatch.setenv(store.ENV, str(tmp_path / "elsewhere"))
    assert store.folder() == tmp_path / "elsewhere"
    monkeypatch.delenv(store.ENV)
    (tmp_path / "repo" / "experiments").mkdir(parents=True)
    (tmp_path / "repo" / "book").mkdir()
    (tmp_path / "repo" / "pyproject.toml").write_text("")
    monkeypatch.chdir(tmp_path / "repo" / "book")          # as a chapter runs
    assert store.folder() == (tmp_path / "repo" / "experiments").resolve()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="Invalid data folder: no experiments/"):
        store.folder()
    with pytest.raises(ValueError, match=r"no runs stored in .* \(make experiments-demo\)"):
        _grid().read(tmp_path)


def test_the_listing_comes_from_the_declarations(capsys):
    assert runner.main(["--list"]) == 0
    paragraphs = [" ".join(p.split()) for p in capsys.readouterr().out.split("\n\n")]
    assert len(paragraphs) == len(grids.names())
    warmup = next(p for p in paragraphs if p.startswith("make experiments-warmup:"))
    assert '"Why warmup works"' in warmup and "experiments/warmup.jsonl" in warmup
    with pytest.raises(ValueError, match="Invalid experiment: 'nope'"):
        runner.main(["nope"])


def test_a_timed_run_is_on_one_thread_and_gets_its_seconds_last():
    seen = []

    @grids.timed
    def execute(job):
        seen.append(torch.get_num_threads())
        return {"n": job.n}

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        record = execute(grids.Key("n")(3))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert list(record) == ["n", "seconds"] and 0 <= record["seconds"] < 1


def test_one_thread_restores_the_count_when_the_block_raises():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(KeyError), reproducible.one_thread():
            assert torch.get_num_threads() == 1
            raise KeyError("x")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
