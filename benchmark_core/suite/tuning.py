"""Equal tuning budgets (``bench tune``): every method searched with the same number of trials.

For each (method, dataset) a *study* searches the method's space (the shared knobs of
:data:`~benchmark_core.specs.SHARED_SPACE` plus the method's own ``MethodSpec.search_space``)
with one seeded Optuna TPE sampler.  Trial 0 is the default configuration (what ``bench run``
plans); every trial is an ordinary :class:`RunSpec` trained on the tuning seed without stress
tests or EMAP, tagged as a trial of its study.  Selection reads the validation primary metric
only.  The chosen configuration is then trained on the suite's seeds with the normal
evaluation, as runs whose ``tuning`` field records the study.

Determinism: the search proceeds in *rounds*.  In round r every study asks its sampler for one
trial, the trials of all studies go to the executor together through
:func:`benchmark_core.suite.plan.run_suite` (so they scale out like a suite and are skipped when
already finished), and each study is told its trial's validation score, read back from the
store.  A study's sequence of trials therefore depends only on its own seed and scores, never
on the executor, the worker count or the order runs finish in.  Resume is replay: the samplers
are rebuilt and asked again round by round; a trial whose ``spec_hash`` already finished is
told its stored score without training.

This module stays free of torch and Optuna at import time (the leaderboard and plots read
:func:`expected_best` and the identity helpers); the search imports both when it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark_core.errors import FuseBenchError
from benchmark_core.specs import BUDGET_KNOBS, Choice, Float, Int, Param, RunSpec

SAMPLER = "optuna-tpe"
# Trials before TPE models the scores: trial 0 (the defaults) and four independent random draws.
# Fixed rather than a fraction of N, so a study's first N trials are the same whatever N is
# (raising --trials later reuses them).
STARTUP_TRIALS = 5
NO_EVALUATION = {"stress": False, "emap": False}
VIEW_TAG_TRIAL, VIEW_TAG_TUNED = "trial", "tuned"


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def space_record(space: Mapping[str, Param]) -> dict[str, Any]:
    """The space as canonical JSON data: {name: {"type": "float"|"int"|"choice", ...}}."""
    return {name: {"type": type(param).__name__.lower(), **param.to_dict()} for name, param in sorted(space.items())}


def space_hash(space: Mapping[str, Param]) -> str:
    return _digest(space_record(space))


@dataclass(frozen=True)
class Study:
    """One (method, dataset) search.

    ``base`` is the default configuration as ``bench run`` plans it, on the tuning seed and
    without stress tests or EMAP: trial 0 is exactly this run.  The study's identity
    (``study_hash``) is the base run, the space, the sampler and the tuning seed; it does not
    include the number of trials, so a longer search continues a shorter one.
    """

    base: RunSpec
    space: Mapping[str, Param]
    tune_seed: int
    primary: str
    higher_is_better: bool

    @property
    def method(self) -> str:
        return self.base.method

    @property
    def dataset(self) -> str:
        return self.base.dataset

    @property
    def space_hash(self) -> str:
        return space_hash(self.space)

    @property
    def study_hash(self) -> str:
        return _digest({"base": self.base.spec_hash, "space": space_record(self.space), "sampler": SAMPLER,
                        "startup_trials": STARTUP_TRIALS, "tune_seed": self.tune_seed})

    @property
    def sampler_seed(self) -> int:
        """Each study's own sampler seed, from the tuning seed and the (method, dataset) pair."""
        return int(_digest([self.tune_seed, self.method, self.dataset]), 16) % 2**32

    @property
    def label(self) -> str:
        return f"{self.method}/{self.dataset}"

    def defaults(self) -> dict[str, Any]:
        """The base configuration's value of every searched knob: trial 0."""
        return {name: getattr(self.base.budget, name) if name in BUDGET_KNOBS else self.base.hparams[name]
                for name in self.space}

    def configure(self, params: Mapping[str, Any], tuning: Mapping[str, Any], **changes: Any) -> RunSpec:
        """The base run with ``params`` applied (budget knobs to the budget, the rest to hparams)."""
        budget = dataclasses.replace(self.base.budget, **{k: v for k, v in params.items() if k in BUDGET_KNOBS})
        hparams = {**self.base.hparams, **{k: v for k, v in params.items() if k not in BUDGET_KNOBS}}
        return dataclasses.replace(self.base, budget=budget, hparams=hparams, tuning=dict(tuning), **changes)

    def trial_spec(self, number: int, params: Mapping[str, Any]) -> RunSpec:
        return self.configure(params, {"role": "trial", "study": self.study_hash, "trial": number})

    def record(self) -> dict[str, Any]:
        """What identifies the search (logged on the study's MLflow run)."""
        return {"method": self.method, "dataset": self.dataset, "study": self.study_hash,
                "space": space_record(self.space),
                "space_hash": self.space_hash, "sampler": SAMPLER, "startup_trials": STARTUP_TRIALS,
                "sampler_seed": self.sampler_seed, "tune_seed": self.tune_seed, "base_spec_hash": self.base.spec_hash,
                "primary_metric": self.primary, "higher_is_better": self.higher_is_better}

    def tuned_specs(self, chosen: Trial, n_trials: int, seeds: Sequence[int],
                    evaluation: Mapping[str, Any]) -> list[RunSpec]:
        """The chosen configuration on every suite seed, with the suite's evaluation; the run
        identity records the study (space, N, sampler, seeds, chosen trial and parameters)."""
        tuning = {"role": "tuned", "study": self.study_hash, "space": self.space_hash, "n_trials": n_trials,
                  "sampler": SAMPLER, "tune_seed": self.tune_seed, "trial": chosen.number,
                  "params": dict(sorted(chosen.params.items()))}
        return [self.configure(chosen.params, tuning, seed=int(seed), evaluation=evaluation) for seed in seeds]


def make_studies(registry, base_specs: Sequence[RunSpec], tune_seed: int) -> list[Study]:
    """One study per planned default run (``base_specs``: ``make_plan`` on the tuning seed with
    stress and EMAP off).  Refuses, in one paragraph, a default outside its method's space:
    trial 0 must be the default configuration."""
    studies = []
    for base in base_specs:
        method = registry.method(base.method)
        space = method.search_space.effective()
        for name, param in space.items():
            value = getattr(base.budget, name) if name in BUDGET_KNOBS else base.hparams.get(name, _MISSING)
            if value is _MISSING:
                raise FuseBenchError(
                    f"method {base.method!r} declares search-space parameter {name!r}, which is not one of its "
                    f"resolved hyper-parameters ({', '.join(sorted(base.hparams))}); fix the method's "
                    "search_space (MethodSpec) or its defaults. Nothing was run or recorded.")
            if not param.contains(value):
                flag = f"--{name.replace('_', '-')}" if name in BUDGET_KNOBS else f"--hparam {base.method}.{name}"
                raise FuseBenchError(
                    f"The default {name}={value!r} of {base.method} on {base.dataset} is outside its tuning space "
                    f"({param.describe()}). Trial 0 of every study is the default configuration, so it must lie "
                    f"inside the space: set {flag} to a value inside it (or leave the flag out), or widen the "
                    "method's search_space. Nothing was run or recorded.")
        dataset = registry.dataset(base.dataset)
        metric = registry.metric(dataset.primary_metric)
        studies.append(Study(base, space, tune_seed, dataset.primary_metric, bool(metric.higher_is_better)))
    return studies


_MISSING = object()


@dataclass
class Trial:
    """One asked configuration: its number in the study, parameters, RunSpec and outcome."""

    number: int
    params: dict[str, Any]
    spec: RunSpec
    value: float | None = None
    state: str = "pending"  # pending | complete | failed
    seconds: float | None = None


def _distribution(param: Param):
    import optuna

    if isinstance(param, Float):
        return optuna.distributions.FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return optuna.distributions.IntDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Choice):
        return optuna.distributions.CategoricalDistribution(param.options)
    raise TypeError(param)  # pragma: no cover - SearchSpace admits only the three


class Search:
    """A study's seeded Optuna sampler, asked one trial at a time (trial 0: the defaults)."""

    def __init__(self, study: Study):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = study
        sampler = optuna.samplers.TPESampler(seed=study.sampler_seed, n_startup_trials=STARTUP_TRIALS)
        self._optuna = optuna.create_study(direction="maximize" if study.higher_is_better else "minimize",
                                           sampler=sampler)
        self._optuna.enqueue_trial(study.defaults())
        self._distributions = {name: _distribution(param) for name, param in study.space.items()}
        self.trials: list[Trial] = []
        self._asked: Any = None

    def ask(self) -> Trial:
        if self._asked is not None:
            raise RuntimeError("tell the previous trial first")  # pragma: no cover - a programming error
        asked = self._optuna.ask(self._distributions)
        params = {name: param.value(asked.params[name]) for name, param in self.study.space.items()}
        trial = Trial(asked.number, params, self.study.trial_spec(asked.number, params))
        self._asked = asked
        self.trials.append(trial)
        return trial

    def tell(self, value: float | None, seconds: float | None = None) -> None:
        """The asked trial's validation score; None (or NaN) when it failed."""
        from optuna.trial import TrialState

        trial = self.trials[-1]
        trial.seconds = seconds
        if value is None or not math.isfinite(value):
            self._optuna.tell(self._asked, state=TrialState.FAIL)
            trial.state = "failed"
        else:
            self._optuna.tell(self._asked, float(value))
            trial.value, trial.state = float(value), "complete"
        self._asked = None

    def best(self) -> Trial | None:
        """The best completed trial by validation score; ties go to the lowest trial number, so
        the defaults win a tie."""
        done = [t for t in self.trials if t.state == "complete"]
        if not done:
            return None
        sign = -1.0 if self.study.higher_is_better else 1.0
        return min(done, key=lambda t: (sign * t.value, t.number))


# -- the expected best score after n trials -----------------------------------------------------

def expected_best(scores: Sequence[float], n: int, higher_is_better: bool = True) -> float:
    """Expected best of ``n`` trials drawn with replacement from the observed ``scores``
    (Dodge et al., EMNLP 2019, "Show your work"): with the N scores sorted ascending,
    E[max of n] = sum_i v_(i) [(i/N)^n - ((i-1)/N)^n].  Lower-is-better scores use the minimum."""
    values = [float(v) for v in scores if v is not None and math.isfinite(v)]
    if not values or n < 1:
        return float("nan")
    values = sorted(values if higher_is_better else [-v for v in values])
    total = len(values)
    best = sum(v * ((i / total) ** n - ((i - 1) / total) ** n) for i, v in enumerate(values, start=1))
    return best if higher_is_better else -best


def expected_best_curve(scores: Sequence[float], higher_is_better: bool = True) -> list[float]:
    """``expected_best`` for n = 1 .. N (N observed scores)."""
    return [expected_best(scores, n, higher_is_better) for n in range(1, len(scores) + 1)]


# -- the driver ----------------------------------------------------------------------------------

class _KeptExecutor:
    """The search's executor as each round sees it: ``run_suite`` shuts its executor down when a
    call ends, but the next round reuses the worker pool (and the data its workers loaded); the
    search shuts the real executor down once, when it stops."""

    def __init__(self, executor):
        self.executor = executor
        self.name = getattr(executor, "name", "")

    def run(self, specs, on_start, progress=None):
        return self.executor.run(specs, on_start, progress)

    def shutdown(self) -> None:
        pass

@dataclass
class TuningReport:
    searches: list[Search] = field(default_factory=list)
    trained: int = 0          # trials trained by this command
    reused: int = 0           # trials found finished in the store (told their stored score)
    finals: Any = None        # the SuiteReport of the chosen configurations' runs

    def chosen(self) -> dict[str, Trial | None]:
        return {s.study.study_hash: s.best() for s in self.searches}

    @property
    def failed_studies(self) -> list[Study]:
        return [s.study for s in self.searches if s.best() is None]


def run_tuning(registry, studies: Sequence[Study], n_trials: int, seeds: Sequence[int],
               evaluation: Mapping[str, Any], tracker, executor, command: str = "bench tune",
               echo: Callable[[str], None] = print, progress=None, on_result=None,
               cost: Callable[[RunSpec], float] | None = None,
               on_skipped: Callable[[RunSpec], None] | None = None) -> TuningReport:
    """Search every study for ``n_trials`` rounds, then train each chosen configuration on
    ``seeds``.  Every run goes through :func:`benchmark_core.suite.plan.run_suite` (skipping, claims,
    the executor, MLflow child runs); ``cost`` orders each round longest first; ``on_skipped``
    hears of every run found finished (a progress bar counts it)."""
    from benchmark_core.suite.plan import run_suite  # the training stack, only when a search runs

    if n_trials < 1:
        raise FuseBenchError(f"--trials must be at least 1, got {n_trials}.")
    report = TuningReport([Search(study) for study in studies])
    closed = tracker.recover_interrupted()
    if closed:
        echo(f"Marked {len(closed)} run(s) interrupted by an earlier killed command as KILLED: {', '.join(closed)}; "
             "they will be run again now.")
    runs = {s.study.study_hash: tracker.open_study(s.study.record(), n_trials) for s in report.searches}
    status = "FINISHED"
    kept = _KeptExecutor(executor)
    try:
        for number in range(n_trials):
            asked = [(search, search.ask()) for search in report.searches]
            specs = [trial.spec for _, trial in asked]
            if cost is not None:
                specs.sort(key=cost, reverse=True)  # longest first: the round ends sooner on several workers
            with tracker.tagged_parents({"fusebench.view": VIEW_TAG_TRIAL}):
                done = run_suite(registry, specs, tracker, kept, f"{command} (trial round {number + 1}/{n_trials})",
                                 echo=echo, progress=progress, on_result=on_result)
            if done.busy:
                raise FuseBenchError(
                    f"{len(done.busy)} trial(s) of round {number + 1} are being trained by another driver on this "
                    f"store ({', '.join(s.label for s in done.busy)}); a search needs every score of a round before "
                    "the next one. Re-run this command after the other driver stops; finished trials are kept.")
            for spec in done.skipped if on_skipped else ():
                on_skipped(spec)
            failed = {r.spec.spec_hash for r in done.results if not r.ok}
            stored = tracker.finished_trials()
            for search, trial in asked:
                metrics = stored.get(trial.spec.spec_hash) if trial.spec.spec_hash not in failed else None
                value = None if metrics is None else metrics.get(f"val/{search.study.primary}")
                search.tell(value, None if metrics is None else metrics.get("info/wall_time_s"))
            report.trained += len(done.results)
            report.reused += len(done.skipped)
            scored = sum(trial.state == "complete" for _, trial in asked)
            echo(f"Trial round {number + 1}/{n_trials}: {len(asked)} trials ({len(done.results)} trained, "
                 f"{len(done.skipped)} already finished, {len(asked) - scored} failed).")
        finals = []
        for search in report.searches:
            best = search.best()
            if best is not None:
                finals += search.study.tuned_specs(best, n_trials, seeds, evaluation)
        if cost is not None:
            finals.sort(key=cost, reverse=True)
        with tracker.tagged_parents({"fusebench.view": VIEW_TAG_TUNED}):
            report.finals = run_suite(registry, finals, tracker, kept, f"{command} (chosen configurations)",
                                      echo=echo, progress=progress, on_result=on_result)
        for spec in report.finals.skipped if on_skipped else ():
            on_skipped(spec)
        for search in report.searches:
            tracker.close_study(runs[search.study.study_hash], summary(search, n_trials), "FINISHED")
        runs.clear()
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException:
        status = "FAILED"
        raise
    finally:
        executor.shutdown()  # interrupted searches must not leave workers training
        with contextlib.suppress(Exception):  # the store failed: the next command closes them
            for run_id in runs.values():  # a search that stopped early: its study run is closed, resumable
                tracker.end_run(run_id, status)
    return report


def summary(search: Search, n_trials: int) -> dict[str, Any]:
    """A finished study as JSON data: its identity, every trial and the choice."""
    best = search.best()
    return {**search.study.record(), "n_trials": n_trials,
            "chosen_trial": None if best is None else best.number,
            "chosen_params": None if best is None else best.params,
            "chosen_value": None if best is None else best.value,
            "trials": [{"trial": t.number, "params": t.params, "spec_hash": t.spec.spec_hash, "state": t.state,
                        "value": t.value, "seconds": t.seconds} for t in search.trials]}
