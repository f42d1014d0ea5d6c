"""Equal tuning budgets (bench tune, docs/tuning.md): search spaces, the search itself, its
resume, the run identity of tuned results, the leaderboard views and the expected-best curve."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
from pathlib import Path

import pytest
from store_checks import query, start_driver, stop, wait_for

from benchmark_core.cli import main
from benchmark_core.errors import FuseBenchError
from benchmark_core.plugins import get_registry
from benchmark_core.reporting.leaderboard import render, runs_frame, select_view
from benchmark_core.specs import (
    BUDGET_KNOBS,
    SHARED_SPACE,
    Budget,
    Choice,
    Float,
    Int,
    MethodSpec,
    RunSpec,
    SearchSpace,
    SpecError,
)
from benchmark_core.suite.runner import resolve_hparams
from benchmark_core.suite.tuning import (
    NO_EVALUATION,
    Search,
    Trial,
    expected_best,
    expected_best_curve,
    make_studies,
)
from benchmark_core.tracking import Tracker
from plugins.methods.additive import build as build_additive

ROOT = Path(__file__).resolve().parent.parent
XOR = ["--datasets", "synthetic-xor", "--dataset-option", "synthetic-xor.n=300", "--epochs", "2",
       "--no-stress", "--no-emap"]


def _args(uri: str, *extra: str, methods: str = "additive,late,tensor", seeds: str = "0,1") -> list[str]:
    return ["--methods", methods, "--seeds", seeds, *XOR, "--tracking-uri", uri, *extra]


# -- search spaces ---------------------------------------------------------------------------------

def test_every_builtin_space_is_valid_and_holds_its_defaults(registry):
    """Each built-in declares a valid space (checked at registration) and its default configuration
    (common defaults < method defaults, the default budget) lies inside: trial 0 is the default."""
    budget = Budget()
    for name in registry.names("methods"):
        method = registry.method(name)
        space = method.search_space.effective()
        assert set(space) >= set(SHARED_SPACE) - set(method.search_space.exclude)
        defaults = resolve_hparams(method, {})
        for knob, param in space.items():
            value = getattr(budget, knob) if knob in BUDGET_KNOBS else defaults[knob]
            assert param.contains(value), (name, knob, value, param.describe())
    # every dataset's own budget defaults stay inside the shared lr/weight-decay ranges too
    for name in registry.names("datasets"):
        for knob in BUDGET_KNOBS:
            value = registry.dataset(name).budget.get(knob, getattr(budget, knob))
            assert SHARED_SPACE[knob].contains(value), (name, knob, value)
    # only what makes a method different is in its own space; MulT excludes the knobs it does not read
    assert registry.method("additive").search_space.params == {}
    assert registry.method("mult").search_space.exclude == ("dropout", "hidden")
    assert set(registry.method("lmf").search_space.params) == {"rank", "rank_weights"}


@pytest.mark.parametrize("make, fragment", [
    (lambda: Float(1.0, 0.5), "low < high"),
    (lambda: Float(0.0, 1.0, log=True), "log scale needs low > 0"),
    (lambda: Float(0.0, float("nan")), "finite"),
    (lambda: Int(0, 8, log=True), "low >= 1"),
    (lambda: Int(1.5, 3), "integers"),
    (lambda: Choice(()), "non-empty"),
    (lambda: Choice((1, 1.0)), "listed twice"),
    (lambda: Choice((0, False)), "True/False"),
    (lambda: Choice(([1],)), "JSON scalar"),
    (lambda: SearchSpace(params={"lr": Float(1e-5, 1e-1, log=True)}), "shared knob"),
    (lambda: SearchSpace(exclude=("rank",)), "not shared knobs"),
])
def test_bad_search_spaces_are_refused_in_one_sentence(make, fragment):
    with pytest.raises(SpecError, match=fragment) as caught:
        make()
    assert "\n" not in str(caught.value)


def test_method_space_must_name_its_own_hyper_parameters_with_the_default_inside():
    with pytest.raises(SpecError, match=r"'rnak' is not one of its hyper-parameters \(defaults: rank\)"):
        MethodSpec(name="p", family="x", build=build_additive, defaults={"rank": 4},
                   search_space={"rnak": Int(1, 8)})
    with pytest.raises(SpecError, match=r"default rank=4 is outside its search space \(integer in \[8, 16\]\)"):
        MethodSpec(name="p", family="x", build=build_additive, defaults={"rank": 4},
                   search_space={"rank": Int(8, 16)})
    spec = MethodSpec(name="p", family="x", build=build_additive, defaults={"rank": 4},
                      search_space={"rank": Int(1, 8)})  # a plain dict is the space's params
    assert spec.search_space == SearchSpace(params={"rank": Int(1, 8)})


def test_a_method_without_a_space_is_tuned_over_the_shared_knobs():
    spec = MethodSpec(name="third-party", family="x", build=build_additive)
    assert spec.search_space.effective() == SHARED_SPACE
    assert Choice((0.0, 1e-3)).value(0) == 0.0 and isinstance(Choice((0.0, 1e-3)).value(0), float)


# -- identity --------------------------------------------------------------------------------------

def test_an_untuned_run_keeps_the_spec_hash_it_had_before_tuning_existed():
    """RunSpec.tuning is left out of the canonical JSON when empty: published and resumable runs keep
    their identity (the hash below was computed before the field existed)."""
    spec = RunSpec("late", "synthetic-xor", 0, Budget(epochs=2), {"hidden": 32, "dropout": 0.1}, {"n": 300},
                   {"stress": False, "emap": False},
                   {"fusebench": "0.2.0", "method": "fusebench 0.2.0", "dataset": "fusebench 0.2.0"}, "abc123")
    assert spec.spec_hash == "53e395f1303c8cd0"
    assert "tuning" not in spec.to_dict() and RunSpec.from_dict(spec.to_dict()) == spec
    tagged = dataclasses.replace(spec, tuning={"role": "trial", "study": "s", "trial": 0})
    assert tagged.spec_hash != spec.spec_hash and RunSpec.from_dict(tagged.to_dict()) == tagged


def _studies(registry, methods=("additive",), seed=1000):
    from benchmark_core.suite.plan import make_plan

    base = make_plan(registry, list(methods), ["synthetic-xor"], [seed], Budget(epochs=1, batch_size=32),
                     dataset_options={"synthetic-xor": {"n": 200}}, evaluation=NO_EVALUATION)
    return base, make_studies(registry, base, seed)


def test_the_tuned_run_identity_changes_with_n_and_with_the_space(registry):
    _, (study,) = _studies(registry)
    chosen = Trial(1, {**study.defaults(), "lr": 0.002}, study.trial_spec(1, study.defaults()))
    (eight,) = study.tuned_specs(chosen, 8, [0], {"stress": True, "emap": True})
    (four,) = study.tuned_specs(chosen, 4, [0], {"stress": True, "emap": True})
    assert eight.spec_hash != four.spec_hash
    assert eight.tuning["n_trials"] == 8 and eight.tuning["params"]["lr"] == 0.002 and eight.budget.lr == 0.002
    narrower = dataclasses.replace(study, space={**study.space, "hidden": Choice((16, 32))})
    (other,) = narrower.tuned_specs(chosen, 8, [0], {"stress": True, "emap": True})
    assert narrower.study_hash != study.study_hash and other.spec_hash != eight.spec_hash
    assert other.tuning["space"] != eight.tuning["space"]
    # the study itself does not depend on N: a longer search continues a shorter one
    assert eight.tuning["study"] == four.tuning["study"] == study.study_hash


def test_trial_zero_is_the_default_configuration_and_the_search_is_seeded(registry):
    base, studies = _studies(registry, methods=("additive", "tensor"))
    for spec, study in zip(base, studies, strict=True):
        search, again = Search(study), Search(study)
        zero = search.ask()
        assert zero.number == 0 and zero.params == study.defaults()
        assert dataclasses.replace(zero.spec, tuning={}) == spec  # exactly what bench run plans
        assert zero.spec.budget == spec.budget and zero.spec.hparams == spec.hparams
        assert again.ask().params == zero.params
        search.tell(0.5)
        again.tell(0.5)
        first, second = search.ask(), again.ask()
        assert first.params == second.params and first.params != zero.params  # same seed, same history
        assert set(first.params) == set(study.space)
        assert all(study.space[k].contains(v) for k, v in first.params.items())


def test_selection_breaks_ties_towards_the_lowest_trial(registry):
    _, (study,) = _studies(registry)
    search = Search(study)
    for value in (0.7, 0.9, 0.9):
        search.ask()
        search.tell(value)
    assert search.best().number == 1
    search.ask()
    search.tell(None)  # a failed trial is never chosen
    assert search.best().number == 1 and search.trials[-1].state == "failed"


# -- the expected best score -----------------------------------------------------------------------

def test_expected_best_matches_a_hand_computation():
    scores = [0.9, 0.2, 0.5]  # sorted: 0.2, 0.5, 0.9
    assert expected_best(scores, 1) == pytest.approx((0.2 + 0.5 + 0.9) / 3)
    # n = 2: 0.2 (1/9) + 0.5 (4/9 - 1/9) + 0.9 (1 - 4/9)
    assert expected_best(scores, 2) == pytest.approx(0.2 / 9 + 0.5 * 3 / 9 + 0.9 * 5 / 9)
    # n = 3: (0.2 * 1 + 0.5 * 7 + 0.9 * 19) / 27
    assert expected_best(scores, 3) == pytest.approx(20.8 / 27)
    curve = expected_best_curve(scores)
    assert curve == sorted(curve) and curve[-1] < max(scores)
    # lower is better: the expected minimum, the mirror image
    assert expected_best([1.0, 2.0], 2, higher_is_better=False) == pytest.approx(1.0 * 3 / 4 + 2.0 / 4)


# -- bench tune end to end ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned_store(tmp_path_factory):
    """`bench run` and `bench tune --trials 3` of three methods into one store."""
    folder = tmp_path_factory.mktemp("tuned")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    assert main(["run", *_args(uri, "--executor", "serial")]) == 0
    assert main(["tune", *_args(uri, "--executor", "serial", "--trials", "3")]) == 0
    return uri, folder


def test_every_trial_is_a_child_run_of_its_study_with_its_parameters(tuned_store):
    uri, _ = tuned_store
    tracker = Tracker(uri)
    runs = tracker._search("tags.`fusebench.kind` = 'study'")
    assert len(runs) == 3 and all(r.info.status == "FINISHED" for r in runs)
    studies = {r.data.tags["fusebench.study"]: r for r in runs}
    trials = tracker._search("tags.`fusebench.kind` = 'child' and tags.`fusebench.view` = 'trial'")
    assert len(trials) == 9 and {r.info.status for r in trials} == {"FINISHED"}
    for trial in trials:
        study = studies[trial.data.tags["fusebench.study"]]
        assert trial.data.tags["mlflow.parentRunId"] == study.info.run_id
        assert trial.data.params["seed"] == "1000" and trial.data.params["evaluation.stress"] == "False"
        assert {"budget.lr", "budget.weight_decay", "hparams.hidden", "hparams.dropout"} <= set(trial.data.params)
        assert trial.data.params["tuning.trial"] == trial.data.tags["fusebench.trial"]
    summary = json.loads(Path(tracker.client.download_artifacts(runs[0].info.run_id, "study.json",
                                                                 str(tuned_store[1]))).read_text())
    assert [t["trial"] for t in summary["trials"]] == [0, 1, 2] and summary["n_trials"] == 3
    assert summary["chosen_trial"] in (0, 1, 2) and summary["sampler"] == "optuna-tpe"
    tuned = tracker._search("tags.`fusebench.kind` = 'child' and tags.`fusebench.view` = 'tuned'")
    assert len(tuned) == 6  # 3 methods x seeds 0, 1
    for run in tuned:
        spec = json.loads(Path(tracker.client.download_artifacts(run.info.run_id, "spec.json",
                                                                 str(tuned_store[1]))).read_text())
        record = spec["tuning"]
        assert record["role"] == "tuned" and record["n_trials"] == 3 and record["tune_seed"] == 1000
        assert set(record) >= {"study", "space", "sampler", "params", "trial"}
        assert spec["budget"]["lr"] == record["params"]["lr"]


def test_the_chosen_trial_is_the_validation_best(tuned_store):
    frame = runs_frame(Tracker(tuned_store[0]))
    trials = frame[frame["view"] == "trial"]
    for _, tuned in select_view(frame, "tuned").iterrows():
        mine = trials[trials["study"] == tuned["study"]].sort_values("trial")
        values = mine["val/accuracy"].tolist()
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        assert int(tuned["trial"]) == int(mine["trial"].iloc[best])


def test_the_default_leaderboard_ignores_trials_and_tuned_runs(tuned_store):
    frame = runs_frame(Tracker(tuned_store[0]))
    assert set(frame["view"].fillna("default")) == {"default", "trial", "tuned"}
    default_only = frame[frame["view"].isna()].drop(columns=["view", "study", "trial", "n_trials", "tuned_params"])
    assert render(frame, "md") == render(default_only, "md")  # what the store shows without bench tune


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html", "latex"])
def test_the_views_render(tuned_store, fmt):
    frame = runs_frame(Tracker(tuned_store[0]))
    tuned = render(frame, fmt, view="tuned")
    both = render(frame, fmt, view="both")
    assert "3 × " in tuned or fmt in ("csv", "json")  # trials x mean seconds per method
    assert ("Kendall" in both) and ("τ = " in both or fmt in ("csv", "json", "latex") or "undefined" in both)
    if fmt == "md":
        header = both.splitlines()[0]
        for column in ("synthetic-xor (accuracy ↑) default", "synthetic-xor (accuracy ↑) tuned",
                       "synthetic-xor (accuracy ↑) rank", "Mean rank default", "Mean rank tuned", "Tuning compute"):
            assert column in header
    if fmt == "json":
        doc = json.loads(both)
        assert doc["view"] == "both" and doc["kendall"][0]["methods"] == 3
        assert {r["trials"] for r in doc["results"]} == {3}


def test_cli_views_plot_and_export_round_trip(tuned_store, tmp_path, capsys):
    from benchmark_core.reporting.publish import export_runs, load_runs

    uri, _ = tuned_store
    assert main(["leaderboard", "--tracking-uri", uri, "--view", "both"]) == 0
    shown = capsys.readouterr().out
    assert "Kendall's τ" in shown and "3 trials per dataset" in shown
    pytest.importorskip("matplotlib")
    assert main(["plot", "tuning", "--tracking-uri", uri, "--out", str(tmp_path / "tuning.png")]) == 0
    assert (tmp_path / "tuning.png").stat().st_size > 1000
    frame = runs_frame(Tracker(uri))
    stored, _ = load_runs(export_runs(frame, tmp_path / "runs.json", "default"))
    assert render(stored, "md", view="both") == render(frame, "md", view="both")
    assert render(stored, "md") == render(frame, "md")


def test_bad_tune_input_is_refused_before_anything_is_written(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["tune", *_args(uri, "--trials", "0")]) == 2
    assert "--trials must be at least 1" in capsys.readouterr().err
    assert main(["tune", *_args(uri, "--trials", "2", "--lr", "0.5")]) == 2
    err = capsys.readouterr().err
    assert "lr=0.5 of additive on synthetic-xor is outside its tuning space" in err and "--lr" in err
    assert main(["tune", *_args(uri, "--trials", "2", "--hparam", "tensor.max_fused_dim=999")]) == 2
    assert "outside its tuning space (one of 1024, 4096, 16384)" in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_results_do_not_depend_on_the_executor(tmp_path):
    """Rounds make the search independent of where and in which order trials finish."""
    seen = []
    for executor in ("serial", "process"):
        uri = f"sqlite:///{tmp_path / executor / 'mlflow.db'}"
        (tmp_path / executor).mkdir()
        assert main(["tune", *_args(uri, "--executor", executor, "--workers", "2", "--trials", "2",
                                    methods="additive,tensor", seeds="0")]) == 0
        frame = runs_frame(Tracker(uri)).sort_values("spec_hash")
        seen.append(frame[["spec_hash", "view", "trial", "val/accuracy", "test/accuracy"]].reset_index(drop=True))
    assert seen[0].equals(seen[1])


# -- selection on validation only --------------------------------------------------------------------

PROBE = '''
import datasets
import numpy as np
import torch
from fusebench import (DatasetSpec, Float, FusionModel, MethodSpec, Output, SearchSpace, TargetSpec,
                       dataset_from_arrays, hookimpl)

TARGET = TargetSpec("multiclass", 2)


def load(options):
    """The test split is the validation split with every label flipped: a configuration's test
    accuracy is 1 - its validation accuracy, so the validation-best is the test-worst."""
    rng = np.random.default_rng(0)

    def split(n):
        a, b = rng.normal(size=(n, 2)).astype("float32"), rng.normal(size=(n, 2)).astype("float32")
        return a, b, (a[:, 0] > 0).astype("int64")

    train, val = split(64), split(40)
    test = (val[0], val[1], 1 - val[2])
    return datasets.DatasetDict({name: dataset_from_arrays({"a": ("vector", s[0]), "b": ("vector", s[1])}, s[2], TARGET)
                                 for name, s in (("train", train), ("validation", val), ("test", test))})


class Dial(FusionModel):
    """Its hyper-parameter alone decides how good it is: logit(class 1) = (2 quality - 1) a[0]."""

    def __init__(self, task, hparams):
        super().__init__(task, hparams)
        self.unused = torch.nn.Parameter(torch.zeros(()))

    def fuse(self, batch):
        logit = (2 * float(self.hparams["quality"]) - 1) * batch.x["a"][:, 0] + 0.0 * self.unused
        return Output(torch.stack([torch.zeros_like(logit), logit], dim=1))


@hookimpl
def register_methods(register):
    register(MethodSpec(name="probe-dial", family="nonlinear", build=Dial, defaults={"quality": 0.5},
                        search_space=SearchSpace(params={"quality": Float(0.0, 1.0)}, exclude=("hidden", "dropout"))))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="probe-flipped", load=load, target=TARGET, modalities=("a", "b"),
                         metrics=("accuracy",), primary_metric="accuracy"))
'''


def test_selection_reads_validation_never_test(tmp_path, install_plugin):
    install_plugin("fusebench-probe", "0.1", "fusebench_tuneprobe", PROBE)
    get_registry.cache_clear()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    try:
        assert main(["tune", "--methods", "probe-dial", "--datasets", "probe-flipped", "--trials", "2", "--seeds", "0",
                     "--epochs", "1", "--no-stress", "--no-emap", "--executor", "serial", "--tracking-uri", uri]) == 0
    finally:
        get_registry.cache_clear()
    frame = runs_frame(Tracker(uri))
    trials = frame[frame["view"] == "trial"].sort_values("trial")
    val, test = trials["val/accuracy"].tolist(), trials["test/accuracy"].tolist()
    assert val[0] != val[1]  # trial 1's quality differs from the default 0.5
    assert [v + t for v, t in zip(val, test, strict=True)] == pytest.approx([1.0, 1.0])  # they disagree everywhere
    chosen = int(select_view(frame, "tuned")["trial"].iloc[0])
    assert chosen == val.index(max(val)) and chosen != test.index(max(test))


# -- resume ---------------------------------------------------------------------------------------------

TRIALS = ("SELECT runs.status, spec.value, runs.run_uuid FROM runs "
          "JOIN tags view ON view.run_uuid = runs.run_uuid AND view.key = 'fusebench.view' AND view.value = 'trial' "
          "JOIN tags kind ON kind.run_uuid = runs.run_uuid AND kind.key = 'fusebench.kind' AND kind.value = 'child' "
          "JOIN tags spec ON spec.run_uuid = runs.run_uuid AND spec.key = 'fusebench.spec_hash'")


def test_a_killed_search_resumes_without_training_a_finished_trial_again(tmp_path, monkeypatch, capsys):
    args = ["tune", "--methods", "additive,late,tensor,early", "--datasets", "synthetic-xor", "--seeds", "0",
            "--epochs", "3", "--dataset-option", "synthetic-xor.n=600", "--no-stress", "--no-emap",
            "--executor", "serial", "--trials", "2"]
    db = tmp_path / "mlflow.db"
    proc = start_driver(tmp_path, args)

    def a_trial_open_after_a_finished_one() -> bool:
        statuses = [status for status, _, _ in query(db, TRIALS)]
        return "FINISHED" in statuses and "RUNNING" in statuses

    try:
        if not wait_for(a_trial_open_after_a_finished_one, timeout=180, step=0.05):
            pytest.fail("the search never had a trial open after finishing a first one")
    finally:
        stop(proc, signal.SIGKILL)
    before = {run_id: spec for status, spec, run_id in query(db, TRIALS) if status == "FINISHED"}
    assert 1 <= len(before) < 8

    monkeypatch.chdir(tmp_path)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "interrupted by an earlier killed command as KILLED" in out
    rows = query(db, TRIALS)
    finished = [spec for status, spec, _ in rows if status == "FINISHED"]
    assert len(finished) == 8 and len(set(finished)) == 8  # every trial once, none trained twice
    assert {run_id for status, _, run_id in rows if status == "FINISHED"} >= set(before)  # the old records kept
    assert not [r for r in rows if r[0] == "RUNNING"]
    assert not query(db, "SELECT run_uuid FROM runs WHERE status = 'RUNNING'")
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    with sqlite3.connect(db) as conn:
        tuned = conn.execute("SELECT COUNT(*) FROM tags view JOIN tags kind ON kind.run_uuid = view.run_uuid "
                             "WHERE view.key = 'fusebench.view' AND view.value = 'tuned' "
                             "AND kind.key = 'fusebench.kind' AND kind.value = 'child'").fetchone()
    assert tuned == (4,)


# -- the published tuned table ----------------------------------------------------------------------------

PUBLISHED = ROOT / "leaderboards"


@pytest.mark.skipif(not (PUBLISHED / "tuned_runs.json").exists(),
                    reason="leaderboards/tuned_runs.json does not exist (made by `bench publish --tuned`)")
def test_committed_tuned_tables_match_what_publish_renders(tmp_path):
    from benchmark_core.reporting.publish import TUNED_FILES, load_runs, render_tuned

    frame, suite = load_runs(PUBLISHED / "tuned_runs.json")
    render_tuned(frame, suite, tmp_path, plots=False)
    for name in TUNED_FILES.values():
        assert (tmp_path / name).read_bytes() == (PUBLISHED / name).read_bytes(), (
            f"leaderboards/{name} differs from what `bench publish --tuned --render-only` renders from "
            "leaderboards/tuned_runs.json; never hand-edit published numbers, re-run the command.")


def test_search_errors_name_the_flag(registry):
    from benchmark_core.suite.plan import make_plan

    base = make_plan(registry, ["tensor"], ["synthetic-xor"], [1000], Budget(epochs=1, weight_decay=3e-4),
                     dataset_options={"synthetic-xor": {"n": 200}}, evaluation=NO_EVALUATION)
    with pytest.raises(FuseBenchError, match=r"weight_decay=0.0003 .* set --weight-decay") as caught:
        make_studies(registry, base, 1000)
    assert "\n" not in str(caught.value)


def test_docs_list_every_builtin_search_space(registry):
    """docs/tuning.md's table names each built-in's own hyper-parameters and excluded knobs."""
    rows = [line for line in (ROOT / "docs" / "tuning.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    for name in registry.names("methods"):
        space = registry.method(name).search_space
        if registry.registration("methods", name).distribution != "fusebench" or not (space.params or space.exclude):
            continue
        row = next((r for r in rows if f"`{name}`" in r.split("|")[1]), None)
        assert row is not None, f"docs/tuning.md has no row for {name}"
        for knob in (*space.params, *space.exclude):
            assert f"`{knob}`" in row, (name, knob)


def test_publish_tuned_stores_the_runs_and_renders_from_them_alone(tuned_store, tmp_path, capsys):
    uri, _ = tuned_store
    out = tmp_path / "published"
    assert main(["publish", "--tuned", "--no-run", "--no-log", "--no-plots", "--tracking-uri", uri,
                 "--suite", "default", "--out", str(out)]) == 0
    first = {name: (out / name).read_bytes() for name in ("tuned.md", "tuned.csv", "tuned.json")}
    assert b"Kendall" in first["tuned.md"] and (out / "tuned_runs.json").exists()
    assert main(["publish", "--tuned", "--render-only", "--no-plots", "--out", str(out)]) == 0
    assert {name: (out / name).read_bytes() for name in first} == first
    assert not (out / "leaderboard.md").exists()  # the default publication is left alone


BAD_SPACE = '''
from fusebench import Int, MethodSpec, hookimpl
from plugins.methods.additive import build


@hookimpl
def register_methods(register):
    register(MethodSpec(name="badspace-sum", family="additive", build=build, defaults={"rank": 4},
                        search_space={"rank": Int(8, 16)}))
'''


def test_a_method_with_an_invalid_space_is_left_out_with_its_reason(install_plugin):
    from benchmark_core.plugins import build_registry

    install_plugin("fusebench-badspace", "0.1", "fusebench_badspace", BAD_SPACE, entry_name="badspace")
    registry = build_registry()
    assert "badspace-sum" not in registry.names("methods") and "additive" in registry.names("methods")
    [failure] = registry.failures
    assert failure.plugin == "badspace"
    assert "the default rank=4 is outside its search space (integer in [8, 16])" in failure.error
