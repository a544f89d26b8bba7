"""HPO: epochs ASHA spends vs random search without pruning, and platform overhead per trial.

  * epochs: digits-cnn's network and Adam loop, trained in-process on sklearn digits (the same
    split sizes as a snapshot), learning rate searched log-uniformly in 1e-5..1 by Optuna's
    random sampler. Per seed, the same sampler seed runs twice: with ASHA (successive halving,
    first rung `--min-resource` epochs, reduction factor 3) and with no pruner, for the same number of trials. The
    figure is the number of epochs trained until the first completed trial reaches the target
    validation accuracy; value = total ASHA epochs / total no-pruning epochs over the seeds
    (goal <= 0.4). The epochs each spends over its whole trial budget (and the best accuracy
    each found) are in figures too.
  * overhead: the same 10-trial random-search study of a trivial objective, ((x-2)^2, logged
    by a code-package trainer) run by a live modelyard server (SQLite, local executor, one
    trial at a time) and by Optuna in-process; (platform wall - in-process wall) / trials.
    The breakdown (job process run time, submit->start, controller gap) is in figures.

    python -m bench.hpo_bench [--seeds 3] [--target 0.97] [--epochs 15] [--overhead-trials 10]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench._harness import write_result


def _digits() -> tuple[Any, ...]:
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(x))
    x = torch.tensor(x[order] * 15 / 255, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y[order], dtype=torch.long)
    n_train = int(len(x) * 0.8)
    return x[:n_train], y[:n_train], x[n_train:n_train + len(x) // 10], \
        y[n_train:n_train + len(x) // 10]


def _search(seed: int, prune: bool, target: float, epochs: int, max_trials: int,
            data: tuple[Any, ...], min_resource: int) -> dict[str, Any]:
    import optuna
    import torch
    from torch import nn

    from modelyard.training.builtin.digits_cnn import network

    x, y, xv, yv = data
    spent = 0
    reached: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        nonlocal spent
        lr = trial.suggest_float("lr", 1e-5, 1.0, log=True)
        torch.manual_seed(trial.number)
        model = network(16, 10)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        loss_fn = nn.CrossEntropyLoss()
        acc = 0.0
        for epoch in range(epochs):
            perm = torch.randperm(len(x))
            model.train()
            for i in range(0, len(x), 64):
                idx = perm[i:i + 64]
                opt.zero_grad()
                loss_fn(model(x[idx]), y[idx]).backward()
                opt.step()
            spent += 1
            model.eval()
            with torch.no_grad():
                acc = float((model(xv).argmax(1) == yv).float().mean())
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        if acc >= target and not reached:
            reached.append(spent)
        return acc

    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.SuccessiveHalvingPruner(min_resource=min_resource, reduction_factor=3)
        if prune else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", pruner=pruner,
                                sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(objective, n_trials=max_trials)
    states = [t.state.name for t in study.trials]
    return {"epochs_to_target": reached[0] if reached else None, "epochs_over_budget": spent,
            "trials": len(states), "pruned": states.count("PRUNED"),
            "best": study.best_value}


def bench_epochs(seeds: int, target: float, epochs: int, max_trials: int,
                 min_resource: int) -> dict[str, Any]:
    import optuna
    import torch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(1)
    data = _digits()
    runs = {}
    for seed in range(seeds):
        runs[str(seed)] = {
            "asha": _search(seed, True, target, epochs, max_trials, data, min_resource),
            "random_no_pruning": _search(seed, False, target, epochs, max_trials, data, 1)}
        print(f"seed {seed}: {runs[str(seed)]}", flush=True)
    asha = [r["asha"]["epochs_to_target"] for r in runs.values()]
    plain = [r["random_no_pruning"]["epochs_to_target"] for r in runs.values()]
    # A search that never reached the target within its budget is charged its whole budget.
    charged = {m: [r[m]["epochs_to_target"] or r[m]["epochs_over_budget"] for r in runs.values()]
               for m in ("asha", "random_no_pruning")}
    ratio = sum(charged["asha"]) / sum(charged["random_no_pruning"])
    budget = (sum(r["asha"]["epochs_over_budget"] for r in runs.values())
              / sum(r["random_no_pruning"]["epochs_over_budget"] for r in runs.values()))
    return {"per_seed": runs, "asha_epochs_to_target": asha, "random_epochs_to_target": plain,
            "charged_epochs": charged,
            "ratio": ratio, "ratio_over_whole_budget": budget, "asha_min_resource": min_resource,
            "target_val_accuracy": target, "epochs_per_trial": epochs,
            "max_trials": max_trials}


TRAIN = """\
from modelyard import runtime

x = float(runtime.context().hyperparameters["x"])
runtime.log_metrics(0, loss=(x - 2.0) ** 2)
runtime.flush_metrics()
"""


def _package() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("train.py", TRAIN)
    return buf.getvalue()


def bench_overhead(n: int) -> dict[str, Any]:
    import optuna

    from bench.training_bench import _server

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    t0 = time.perf_counter()
    local = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    local.optimize(lambda t: (t.suggest_float("x", -10, 10) - 2.0) ** 2, n_trials=n)
    inproc = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp, _server(Path(tmp) / "home") as (c, _):
        code = {"digest": c.training.upload_code(_package())["digest"], "entrypoint": "train.py"}
        t0 = time.perf_counter()
        c.hpo.create_from_spec({
            "name": "overhead", "code": code,
            "search_space": {"x": {"type": "float", "low": -10, "high": 10}},
            "objective": {"metric": "loss", "direction": "minimize"},
            "sampler": {"kind": "random", "seed": 0}, "pruner": {"kind": "none"},
            "n_trials": n, "max_parallel": 1})
        done = c.hpo.wait("overhead", timeout=600, poll_s=0.05)
        wall = time.perf_counter() - t0
        began = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=wall)
        jobs = [c.training.get(t["job_id"]) for t in c.hpo.trials("overhead")]
    ts = [{k: datetime.fromisoformat(j[k]) for k in ("created_at", "started_at", "finished_at")}
          for j in jobs]
    run_s = [(t["finished_at"] - t["started_at"]).total_seconds() for t in ts]
    start_s = [(t["started_at"] - t["created_at"]).total_seconds() for t in ts]
    gap_s = [(b["created_at"] - a["finished_at"]).total_seconds() for a, b in pairwise(ts)]
    ended = datetime.fromisoformat(done["finished_at"])
    return {"trials": n, "state": done["state"], "platform_wall_s": wall,
            "in_process_wall_s": inproc, "per_trial_overhead_s": (wall - inproc) / n,
            "job_process_run_s_median": statistics.median(run_s),
            "submit_to_start_s_median": statistics.median(start_s),
            "controller_gap_s_median": statistics.median(gap_s) if gap_s else None,
            "orchestration_s_per_trial": statistics.median(start_s) + (
                statistics.median(gap_s) if gap_s else 0.0),
            "job_process_run_s": run_s, "submit_to_start_s": start_s, "controller_gap_s": gap_s,
            "create_to_first_trial_s": (ts[0]["created_at"] - began).total_seconds(),
            "last_trial_to_study_done_s": (ended - ts[-1]["finished_at"]).total_seconds()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.97)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--max-trials", type=int, default=20)
    ap.add_argument("--overhead-trials", type=int, default=10)
    ap.add_argument("--min-resource", type=int, default=3, help="ASHA's first rung (epochs)")
    ap.add_argument("--skip-overhead", action="store_true")
    args = ap.parse_args()
    epochs = bench_epochs(args.seeds, args.target, args.epochs, args.max_trials,
                          args.min_resource)
    write_result("hpo_asha_epochs", "ASHA spends <= 40% of the epochs random search without "
                 "pruning spends to reach the same validation accuracy (digits-cnn, 3 seeds)",
                 "asha_epochs_over_random_epochs", epochs["ratio"], 0.4, False, epochs, {},
                 __file__)
    if args.skip_overhead:
        return
    overhead = bench_overhead(args.overhead_trials)
    write_result("hpo_trial_overhead", "platform overhead per trial <= 0.3 s vs the same "
                 "Optuna study in-process", "seconds_per_trial",
                 overhead["per_trial_overhead_s"], 0.3, False, overhead, {}, __file__)


if __name__ == "__main__":
    main()
