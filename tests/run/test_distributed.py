"""A run on a Dask cluster (`--workers N`, `--scheduler ADDRESS`) writes the report a local run
writes: the same bytes outside its `run` section, which says where it ran. Workers read
their own shards; the cluster a run starts is always shut down; what a run on workers cannot
do is refused before anything runs, in one line."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from parityspec.api import RunOptions, run
from parityspec.checks import CHECKS as CHECKS_REGISTRY
from parityspec.errors import ExitCode, InputError
from tests.run.test_streaming import CHURN, pretrained  # noqa: F401  (a fixture)

pytest.importorskip("distributed")

CHECKS = [
    {"id": "onnx-parity", "type": "probability_parity", "between": ["sklearn", "onnx"]},
    # Dynamic INT8 computes its scales per batch: equal figures mean equal batches.
    {"id": "int8-parity", "type": "probability_parity", "between": ["sklearn", "int8"]},
    {"id": "int8-labels", "type": "label_agreement", "between": ["sklearn", "int8"]},
    {"id": "int8-flips", "type": "threshold_flips", "between": ["sklearn", "int8"]},
    {"id": "int8-metrics", "type": "metric_delta", "between": ["sklearn", "int8"]},
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """The churn rows as a directory of three Parquet files of two row groups each."""
    folder = tmp_path_factory.mktemp("sharded")
    frame = pd.read_csv(CHURN / "churn.csv")
    bounds = [0, 2100, 4000, len(frame)]
    (folder / "rows").mkdir()
    for number, (start, stop) in enumerate(itertools.pairwise(bounds)):
        table = pa.Table.from_pandas(frame.iloc[start:stop], preserve_index=False)
        pq.write_table(table, folder / "rows" / f"part-{number}.parquet", row_group_size=1100)
    return folder


def spec_in(folder, model, checks=CHECKS, data_path="rows", name="spec.yaml") -> str:
    spec = {
        "parityspec": 1,
        "name": "distributed",
        "data": {"path": data_path, "target": "churned", "batch_size": 512},
        "model": {"task": "binary"},
        "backends": {
            "sklearn": {"kind": "sklearn", "path": str(model), "trusted": True},
            "onnx": {"kind": "onnx", "from": "sklearn"},
            "int8": {"kind": "quantized", "from": "onnx"},
        },
        "checks": checks,
    }
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def body(outcome) -> str:
    """report.json as written, without its run section."""
    report = json.loads((outcome.out_dir / "report.json").read_text())
    report.pop("run")
    return json.dumps(report, sort_keys=True, indent=1)


def test_one_and_two_workers_write_the_local_report(shards, pretrained, tmp_path):  # noqa: F811
    spec = spec_in(shards, pretrained)
    local = run(spec, RunOptions(out=tmp_path / "local", use_cache=False))
    one = run(spec, RunOptions(out=tmp_path / "one", use_cache=False, workers=1))
    two = run(spec, RunOptions(out=tmp_path / "two", use_cache=False, workers=2))
    assert local.exit_code in (ExitCode.PASSED, ExitCode.CHECK_FAILED), local.report["steps"]
    assert {c["status"] for c in local.report["checks"]} <= {"passed", "failed"}
    assert body(one) == body(local)
    assert body(two) == body(local)
    assert local.report["checks"][0]["figures"]["samples"] == 6000
    assert two.report["run"]["notes"] == [
        "ran on a local Dask cluster of 2 workers: 6 shards, 6000 rows"
    ]
    assert multiprocessing.active_children() == []  # the cluster it started is gone


def test_a_run_on_workers_restores_nothing_it_cannot_and_caches_its_checks(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
):
    """Predictions stay on the workers: none is cached. The checks' results are the local
    ones, so a later local run restores them."""
    spec = spec_in(shards, pretrained)
    cache = tmp_path / "cache"
    on_workers = run(spec, RunOptions(out=tmp_path / "a", cache_dir=cache, workers=1))
    local = run(spec, RunOptions(out=tmp_path / "b", cache_dir=cache))
    restored = local.report["run"]["from_cache"]
    assert {f"check:{c['id']}" for c in CHECKS} <= set(restored)
    assert not [s for s in restored if s.startswith("predict:")]
    assert body(local) == body(on_workers)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("csv", "only Parquet data is read shard by shard"),
        ("unshardable", "cannot compute labels (label_agreement)"),
        ("split", "cannot split the rows or train a backend"),
    ],
)
def test_what_workers_cannot_do_is_refused_before_anything_runs(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
    monkeypatch,
    change,
    message,
):
    checks, data_path = CHECKS, "rows"
    if change == "csv":
        data_path = str(CHURN / "churn.csv")
    if change == "unshardable":  # a check that reads predictions and does not merge
        checks = [{"id": "labels", "type": "label_agreement", "between": ["sklearn", "onnx"]}]
        module = CHECKS_REGISTRY["label_agreement"]
        hooks = {n: getattr(module, n) for n in dir(module) if n not in ("summarize", "conclude")}
        monkeypatch.setitem(CHECKS_REGISTRY, "label_agreement", SimpleNamespace(**hooks))
    spec = spec_in(tmp_path, pretrained, checks, data_path=str(shards / data_path))
    if change == "split":
        path = Path(spec)
        document = yaml.safe_load(path.read_text())
        document["data"]["split"] = {"test_size": 0.5}
        path.write_text(yaml.safe_dump(document))
    with pytest.raises(InputError) as raised:
        run(spec, RunOptions(out=tmp_path / "out", use_cache=False, workers=1))
    assert message in str(raised.value)
    assert not (tmp_path / "out" / "report.json").exists()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "parityspec", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_an_unreachable_scheduler_is_exit_2_naming_it(shards, pretrained, tmp_path):  # noqa: F811
    spec = spec_in(shards, pretrained)
    done = cli("run", spec, "--no-cache", "--scheduler", "tcp://127.0.0.1:9")
    assert done.returncode == ExitCode.INVALID_INPUT, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr


def test_workers_and_scheduler_together_are_refused(shards, pretrained):  # noqa: F811
    done = cli("run", spec_in(shards, pretrained), "--workers", "2", "--scheduler", "tcp://x:1")
    assert done.returncode == ExitCode.INVALID_INPUT
    assert "--workers starts a cluster and --scheduler names one" in done.stderr


def test_without_dask_the_error_names_the_extra(shards, pretrained, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` fails
    with pytest.raises(InputError) as raised:
        run(spec_in(shards, pretrained), RunOptions(out=tmp_path / "o", workers=1))
    assert "pip install 'parityspec[dask]'" in str(raised.value)


def test_a_shard_that_fails_ends_the_run_naming_it(tmp_path, pretrained):  # noqa: F811
    """A value a worker refuses in one shard: the steps error naming the shard's row; no
    check passes on the other shards' rows alone."""
    frame = pd.read_csv(CHURN / "churn.csv").head(400)
    (tmp_path / "rows").mkdir()
    pq.write_table(
        pa.Table.from_pandas(frame.head(200), preserve_index=False), tmp_path / "rows" / "a.parquet"
    )
    bad = frame.iloc[200:].copy()
    bad.iloc[7, bad.columns.get_loc("monthly_charges")] = float("inf")
    pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "rows" / "b.parquet")
    outcome = run(
        spec_in(tmp_path, pretrained, [CHECKS[0]]),
        RunOptions(out=tmp_path / "out", use_cache=False, workers=1),
    )
    assert outcome.exit_code in (ExitCode.INVALID_INPUT, ExitCode.STEP_ERROR)
    errors = [s for s in outcome.report["steps"] if s["status"] == "error"]
    assert errors and all("b.parquet" in s["reason"] for s in errors)
    assert outcome.report["checks"][0]["status"] == "skipped"


def test_a_worker_that_dies_mid_shard_has_its_shard_run_elsewhere(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    """The first shard kills the worker predicting it; Dask runs the shard again on a worker
    that lives, and the report is still the local run's."""
    import skops.io as sio
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from tests.run.dying import MARK, die_once

    model = sio.load(pretrained, trusted=sio.get_untrusted_types(file=pretrained))
    sio.dump(make_pipeline(FunctionTransformer(die_once), model), tmp_path / "dying.skops")
    mark = tmp_path / "mark"
    monkeypatch.setenv(MARK, str(mark))
    checks = [{"id": "same", "type": "probability_parity", "between": ["sklearn", "dying"]}]
    spec = Path(spec_in(tmp_path, pretrained, checks, data_path=str(shards / "rows")))
    document = yaml.safe_load(spec.read_text())
    document["backends"] = {
        "sklearn": document["backends"]["sklearn"],
        "dying": {"kind": "sklearn", "path": str(tmp_path / "dying.skops"), "trusted": True},
    }
    spec.write_text(yaml.safe_dump(document))
    mark.write_text("the local run must not die")
    local = run(str(spec), RunOptions(out=tmp_path / "local", use_cache=False))
    mark.unlink()
    survived = run(str(spec), RunOptions(out=tmp_path / "two", use_cache=False, workers=2))
    assert mark.read_text() == "died once"  # a worker did die
    assert survived.exit_code == ExitCode.PASSED, survived.report["steps"]
    assert body(survived) == body(local)


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_workers_a_run_starts_keep_no_profile_history_even_when_restarted():
    """Dask's profiler keeps a call tree for every second of work: a worker's memory would
    grow with the run's length. It is off in the workers a run starts, and in a worker its
    nanny starts again (after a crash)."""
    from parityspec.run.distributed import Placement, cluster

    with cluster(Placement(workers=1)) as client:
        assert list(client.run(_profiling).values()) == [False]
        client.restart()
        assert list(client.run(_profiling).values()) == [False]


def test_a_torch_module_travels_as_its_factory_and_state_dict(shards, tmp_path):
    """The worker builds the module with the spec's factory and loads the client's weights:
    the report is the local one, whatever the factory's own initialisation draws."""
    pytest.importorskip("torch")
    spec = {
        "parityspec": 1,
        "name": "torch-on-workers",
        "data": {
            "path": str(shards / "rows"),
            "target": "churned",
            "features": [
                "tenure_months",
                "monthly_charges",
                "total_charges",
                "support_calls",
                "data_usage_gb",
                "age",
            ],
            "batch_size": 512,
        },
        "model": {"task": "binary"},
        "backends": {
            "torch": {
                "kind": "torch",
                "module": str(tmp_path / "unseeded.py") + ":mlp",
                "returns": "logits",
                "activation": "sigmoid",
            },
            "onnx": {"kind": "onnx", "from": "torch"},
        },
        "checks": [{"id": "p", "type": "probability_parity", "between": ["torch", "onnx"]}],
    }
    # No seed: each process that calls the factory draws other weights.
    (tmp_path / "unseeded.py").write_text(
        "import torch\n\n\n"
        "class Mlp(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.hidden, self.out = torch.nn.Linear(6, 8), torch.nn.Linear(8, 1)\n\n"
        "    def forward(self, x):\n"
        "        x = torch.nan_to_num(x) / 100  # the churn columns have gaps\n"
        "        return self.out(torch.relu(self.hidden(x)))\n\n\n"
        "def mlp():\n"
        "    return Mlp()\n"
    )
    path = tmp_path / "torch.yaml"
    path.write_text(yaml.safe_dump(spec))
    # Had a worker drawn its own weights, torch there would not match the client's export.
    two = run(str(path), RunOptions(out=tmp_path / "two", use_cache=False, workers=2))
    assert two.exit_code == ExitCode.PASSED, two.report["checks"]
    assert two.report["checks"][0]["figures"]["max_abs_diff"] < 1e-6
    # Seeded, two runs draw the same weights: the report is the local one.
    source = (tmp_path / "unseeded.py").read_text()
    (tmp_path / "unseeded.py").write_text(
        source.replace("    return Mlp()", "    torch.manual_seed(0)\n    return Mlp()")
    )
    local = run(str(path), RunOptions(out=tmp_path / "local", use_cache=False))
    again = run(str(path), RunOptions(out=tmp_path / "again", use_cache=False, workers=2))
    assert body(again) == body(local)


def test_classes_taken_from_the_data_are_every_shards_even_where_a_shard_lacks_one(tmp_path):
    """No model names its classes (a torch module and its export): a local run takes them
    from all the rows; a shard holding one class only must not take them from its own."""
    pytest.importorskip("torch")
    frame = pd.read_csv(CHURN / "churn.csv").sort_values("churned", kind="stable")
    features = ["tenure_months", "monthly_charges", "support_calls", "age"]
    (tmp_path / "rows").mkdir()
    for number, part in enumerate([frame.iloc[:2000], frame.iloc[2000:]]):  # the first: all 0
        pq.write_table(
            pa.Table.from_pandas(part[[*features, "churned"]], preserve_index=False),
            tmp_path / "rows" / f"part-{number}.parquet",
        )
    (tmp_path / "seeded.py").write_text(
        "import torch\n\n\n"
        "class Mlp(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.hidden, self.out = torch.nn.Linear(4, 8), torch.nn.Linear(8, 1)\n\n"
        "    def forward(self, x):\n"
        "        x = torch.nan_to_num(x) / 100  # the churn columns have gaps\n"
        "        return self.out(torch.relu(self.hidden(x)))\n\n\n"
        "def mlp():\n"
        "    torch.manual_seed(0)\n"
        "    return Mlp()\n"
    )
    between = ["torch", "onnx"]
    spec = {
        "parityspec": 1,
        "name": "classes-from-data",
        "data": {"path": "rows", "target": "churned", "features": features, "batch_size": 512},
        "model": {"task": "binary"},
        "backends": {
            "torch": {
                "kind": "torch",
                "module": "seeded.py:mlp",
                "returns": "logits",
                "activation": "sigmoid",
            },
            "onnx": {"kind": "onnx", "from": "torch"},
        },
        "checks": [
            {"id": t, "type": t, "between": between}
            for t in ("probability_parity", "label_agreement", "threshold_flips", "metric_delta")
        ],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    local = run(str(path), RunOptions(out=tmp_path / "local", use_cache=False))
    assert local.exit_code == ExitCode.PASSED, local.report["checks"]
    metrics = next(c for c in local.report["checks"] if c["id"] == "metric_delta")
    assert metrics["details"]["classes_from"] == "data"
    two = run(str(path), RunOptions(out=tmp_path / "two", use_cache=False, workers=2))
    assert body(two) == body(local)


def _without_skops() -> None:
    """On a worker: as if its environment lacked skops."""
    sys.modules["skops"] = None  # type: ignore[assignment]
    sys.modules["skops.io"] = None  # type: ignore[assignment]


def test_a_worker_without_the_models_library_is_named(shards, pretrained, tmp_path):  # noqa: F811
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.run(_without_skops)
        (address,) = client.scheduler_info()["workers"]
        outcome = run(
            spec_in(shards, pretrained),
            RunOptions(out=tmp_path / "out", use_cache=False, scheduler=cluster.scheduler_address),
        )
    assert outcome.exit_code == ExitCode.INVALID_INPUT
    errors = [s["reason"] for s in outcome.report["steps"] if s["status"] == "error"]
    assert errors and f"Dask worker {address} lacks the library 'skops.io'" in errors[0]


def test_a_cluster_whose_workers_profile_is_used_and_said_to_grow(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster),
    ):  # Dask's default: the profiler on
        outcome = run(
            spec_in(shards, pretrained),
            RunOptions(out=tmp_path / "out", use_cache=False, scheduler=cluster.scheduler_address),
        )
    assert outcome.exit_code in (ExitCode.PASSED, ExitCode.CHECK_FAILED), outcome.report["steps"]
    assert any(
        "start them with distributed.worker.profile.enabled: false" in note
        for note in outcome.report["run"]["notes"]
    )


def _processes_with(token: str) -> list[int]:
    """Processes whose environment holds `token`: the run and every process it started."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if token.encode() in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:  # gone, or not ours
            continue
    return found


@pytest.mark.parametrize("stop", ["timeout", "interrupt"])
def test_the_cluster_a_run_started_is_shut_down_however_it_ends(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
    stop,
):
    import os
    import signal
    import time
    import uuid

    token = f"PARITYSPEC_TEST_RUN_{uuid.uuid4().hex}"
    args = [sys.executable, "-m", "parityspec", "run", spec_in(shards, pretrained), "--no-cache"]
    args += ["--workers", "2", "--out", str(tmp_path / "out")]
    if stop == "timeout":
        args += ["--timeout", "0.5"]
    env = {**os.environ, token: "1"}
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if stop == "interrupt":
        deadline = time.monotonic() + 60
        while len(_processes_with(token)) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)  # until its workers are up
        assert len(_processes_with(token)) >= 3, "the cluster never started"
        process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == (130 if stop == "interrupt" else ExitCode.STEP_ERROR)
    deadline = time.monotonic() + 10
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with(token) == []


def test_a_check_that_runs_the_models_itself_runs_on_the_client_and_says_so(
    shards,
    pretrained,  # noqa: F811
    tmp_path,
):
    checks = [
        CHECKS[0],
        {
            "id": "speed",
            "type": "benchmark",
            "between": ["onnx", "int8"],
            "batch_sizes": [64],
            "repeats": 2,
        },
    ]
    outcome = run(
        spec_in(tmp_path, pretrained, checks, data_path=str(shards / "rows")),
        RunOptions(out=tmp_path / "out", use_cache=False, workers=1),
    )
    assert {c["status"] for c in outcome.report["checks"]} <= {"passed", "failed"}
    assert (
        "computed on the client, as in a local run (they run the models themselves): speed"
        in outcome.report["run"]["notes"]
    )
