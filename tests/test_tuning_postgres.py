"""Tuning on a real PostgreSQL server: shared studies, interrupted workers, unreachable or bad URLs.

A throwaway cluster (Debian's ``postgresql`` package) runs in a temporary folder on a Unix socket
for this module; the tests skip when the server or the driver (``imdb-sentiment[scale]``) is absent.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from imdb_sentiment.cli import main

ROOT = Path(__file__).resolve().parents[1]
NO_DRIVER = "the PostgreSQL driver comes with pip install 'imdb-sentiment[scale]'"


def _server_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return installed[-1].parent if installed else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a Unix socket, stopped and deleted after the module."""
    pytest.importorskip("psycopg", reason=NO_DRIVER)
    server = _server_bin()
    if server is None:
        pytest.skip("no PostgreSQL server installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="imdb-sentiment-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder)
            pytest.skip("running as root without a postgres account to run the server as")
        os.chown(folder, account.pw_uid, account.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True, timeout=120)

    try:
        run(str(server / "initdb"), "-D", str(data), "-U", "imdb", "--auth", "trust", "-E", "UTF8",
            "--no-sync")
        run(str(server / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-o",
            f"-k {folder} -c listen_addresses='' -p 5432 -c fsync=off", "start")
    except subprocess.CalledProcessError as error:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {error.stderr.strip()[-500:]}")
    try:
        yield f"postgresql://imdb@/postgres?host={folder}"
    finally:
        subprocess.run([*as_user, str(server / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _trials(url: str, study: str) -> list:
    import optuna

    return optuna.load_study(study_name=study, storage=url).get_trials(deepcopy=False)


def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path, runs_dir):
    from test_tuning import run_workers  # the SQLite test's workers: real Optuna, fake training

    ran = run_workers(postgres_url, runs_dir, tmp_path)
    trials = _trials(postgres_url, "shared")
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == sum(ran) == len(trials) >= 6  # the total is reached, nothing left running
    assert len(complete) <= 7  # at most one trial per extra worker past the target
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no number handed out twice
    assert len({t.params["learning_rate"] for t in complete}) == len(complete)  # no trial run twice
    assert len({t.user_attrs["worker"] for t in complete}) == 2  # both workers took trials


@pytest.mark.slow
def test_an_interrupted_tune_worker_leaves_its_trial_failed(postgres_url, tiny_encoder, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    texts = [f"A wonderful film {i}." if i % 2 else f"A boring film {i}." for i in range(48)]
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(48)]}).to_parquet(data / "train.parquet")
    config = tmp_path / "run.toml"  # many epochs, so the trial is still running when interrupted
    config.write_text('[train]\nprecision = "fp32"\nepochs = 2000\nbatch_size = 8\nmax_length = 32\n'
                      '[search_space.learning_rate]\ntype = "float"\nlow = 1e-4\nhigh = 1e-3\nlog = true\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "imdb_sentiment", "tune", "--model", str(tiny_encoder), "--data", str(data),
         "--storage", postgres_url, "--study-name", "interrupted", "--trials", "2", "--config", str(config),
         "--output", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            if any(t.state.name == "RUNNING" for t in _trials(postgres_url, "interrupted")):
                break
        except KeyError:  # the worker has not created the study yet
            pass
        time.sleep(0.5)
    time.sleep(2)  # into the training loop
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=120)
    assert worker.returncode == 130, err
    assert "marked failed" in err
    [trial] = _trials(postgres_url, "interrupted")
    assert trial.state.name == "FAIL"


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://imdb:secret@127.0.0.1:1/optuna", "cannot connect to the study database"),
    ("postgresql://imdb:secret@db.example:notaport/optuna", "the port is not a number"),
    ("postgresql://imdb:secret@db.example:99999/optuna", "port 99999 is out of range"),
    ("postgresql://imdb:secret@db.example", "names no database"),
])
def test_unreachable_or_malformed_database_is_one_line(url, message, tmp_path, capsys):
    pytest.importorskip("psycopg", reason=NO_DRIVER)
    code = main(["tune", "--model", "m", "--data", "d", "--output", str(tmp_path / "out"), "--storage", url])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert "secret" not in "\n".join(err)  # the password is masked
