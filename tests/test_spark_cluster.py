"""engine: spark on a real cluster: a standalone master, one worker and a Spark Connect server
started on 127.0.0.1 from the pyspark package, once for the module. The hand-computed project
scores the same there as on DuckDB, and each date equals a run on the data cut at that date."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthscore import Project
from healthscore.config.specs import SparkSpec
from healthscore.engine.adapter import SparkEngine, _stop_remote_session, spark_settings
from healthscore.errors import EngineError

from .projects import SPARK_TEST_JVM
from .test_pipeline import DATES_SMALL, _same_frames

READY_WITHIN = 180  # seconds a JVM of the cluster may take to start on a busy machine


@dataclass
class Cluster:
    master: str  # spark://127.0.0.1:PORT
    remote: str  # sc://127.0.0.1:PORT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes]) -> str:
    """The first log line holding ``text``, once the process has written it."""
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if text in ln]
        if lines:
            return lines[0]
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{log.name}: no '{text}' within {READY_WITHIN}s:\n{tail}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    pyspark = pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("the Spark engine needs Java 17 on the PATH (apt-get install openjdk-17-jre)")
    home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_SCALA_VERSION": "2.13", "SPARK_DAEMON_JAVA_OPTS": SPARK_TEST_JVM,
           "SPARK_SUBMIT_OPTS": SPARK_TEST_JVM,
           "SPARK_CONF_DIR": str(folder)}  # no spark-defaults.conf of the machine's
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = folder / f"{name}.log"
        daemon = {"SPARK_DAEMON_MEMORY": "256m"} if name != "connect" else {}  # master, worker
        with open(log, "wb") as sink:
            procs.append(subprocess.Popen(["nice", "-n", "5", "bash", *args], env={**env, **daemon},
                                          cwd=folder, stdout=sink, stderr=subprocess.STDOUT))
        return procs[-1], log

    try:
        spark_class = str(home / "bin/spark-class")
        proc, log = start("master", spark_class, "org.apache.spark.deploy.master.Master",
                          "--host", "127.0.0.1", "--port", "0", "--webui-port", "0")
        master = _wait_for(log, "Starting Spark master at", proc).rsplit(" ", 1)[-1]
        _wait_for(log, "New state: ALIVE", proc)
        # the worker and the Spark Connect server start side by side: the server's
        # executor is launched once the worker has registered
        worker = start("worker", spark_class, "org.apache.spark.deploy.worker.Worker",
                       "--host", "127.0.0.1", "--webui-port", "0", "--cores", "2",
                       "--memory", "2g", "--work-dir", str(folder / "work"), master)
        port = _free_port()
        connect = start(  # a Spark Connect server, itself an application of the cluster
            "connect", str(home / "bin/spark-submit"), "--master", master,
            "--driver-memory", "1g", "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
            *_conf({"spark.connect.grpc.binding.address": "127.0.0.1",
                    "spark.connect.grpc.binding.port": str(port), "spark.driver.host": "127.0.0.1",
                    "spark.cores.max": "1", "spark.executor.memory": "512m",
                    "spark.executor.extraJavaOptions": SPARK_TEST_JVM,
                    "spark.ui.enabled": "false"}),
            "spark-internal")
        _wait_for(worker[1], "Successfully registered with master", worker[0])
        _wait_for(connect[1], "Spark Connect server started at", connect[0])
        yield Cluster(master, f"sc://127.0.0.1:{port}")
    finally:
        _stop_sessions_on(master)
        for proc in reversed(procs):  # the connect server, the worker (and its executors), the master
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _stop_sessions_on(master: str) -> None:
    """Stop this process's sessions on the cluster while it still runs: the Spark Connect
    session (stopped once its server is gone, its client retries for ten minutes) and a driver
    whose master is the cluster's."""
    from pyspark import SparkContext

    _stop_remote_session()
    active = SparkContext._active_spark_context
    if active is not None and active.master == master:
        active.stop()


def _conf(settings: dict[str, str]) -> list[str]:
    return [arg for key, value in settings.items() for arg in ("--conf", f"{key}={value}")]


# Spark's SQL settings for the few rows of the hand-computed project, given in the project as a
# user would: two shuffle partitions (rows still spread over several tasks, not Spark's 200),
# no adaptive re-planning and no whole-stage code generation; expressions are still compiled to
# Java here (the local tests interpret them: tests.projects.SMALL_SPARK). With SPARK_TEST_JVM on
# every JVM of the cluster, the standalone test alone costs 121 CPU s instead of 297.
SMALL_SQL = ("spark.sql.shuffle.partitions: 2, spark.sql.adaptive.enabled: false, "
             "spark.sql.codegen.wholeStage: false")
# The Spark Connect test interprets expressions and joins without broadcasts, as the local tests
# do; the standalone test keeps the generated code and the broadcast joins.
CONNECT_SQL = (f"{SMALL_SQL}, spark.sql.codegen.factoryMode: NO_CODEGEN, "
               "spark.sql.autoBroadcastJoinThreshold: -1")


def _spark_project(root: Path, section: str) -> Path:
    from tests.test_measures import build_project

    build_project(root, engine="spark", spark="")
    config = root / "healthscore.yml"
    config.write_text(config.read_text() + section)
    return root


def _cut_runs_match(frame, alone) -> None:  # type: ignore[no-untyped-def]
    """Each date equals a DuckDB run on the data as it stood that day: the cluster sees no future."""
    for day in DATES_SMALL:
        _same_frames(frame[frame.as_of == day], alone[day])


# Spark Connect first, then the standalone cluster: the standalone test also shows that a
# process which held a Spark Connect session starts a driver of its own afterwards.
@pytest.mark.spark
def test_spark_connect_scores_as_duckdb_does_and_sees_no_future(
        cluster: Cluster, small_duckdb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("grpc")
    root = _spark_project(tmp_path / "connect",
                          f"spark:\n  remote: {cluster.remote}\n  conf: {{{CONNECT_SQL}}}\n")
    frame = Project.load(root).run(dates=DATES_SMALL).to_pandas()
    duckdb_scores, alone = small_duckdb
    _same_frames(duckdb_scores, frame)
    _cut_runs_match(frame, alone)


@pytest.mark.spark
def test_a_standalone_cluster_scores_as_duckdb_does_and_sees_no_future(
        cluster: Cluster, small_duckdb, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = _spark_project(tmp_path / "spark", (
        f"spark:\n  master: {cluster.master}\n  driver_memory: 1g\n"
        "  executor: {memory: 512m, cores: 1, instances: 1}\n"
        f"  conf: {{spark.driver.host: 127.0.0.1, spark.executor.extraJavaOptions: '{SPARK_TEST_JVM}',\n"
        f"         {SMALL_SQL}}}\n"))
    project = Project.load(root)
    frame = project.run(dates=DATES_SMALL).to_pandas()
    from pyspark import SparkContext

    assert SparkContext._active_spark_context.master == cluster.master  # it ran there
    duckdb_scores, alone = small_duckdb
    _same_frames(duckdb_scores, frame)
    _cut_runs_match(frame, alone)


def test_settings_default_to_local_mode_and_take_the_section() -> None:
    local = spark_settings(SparkSpec(), threads=3)
    assert (local["spark.master"], local["spark.sql.shuffle.partitions"]) == ("local[3]", "4")
    assert local["spark.driver.memory"] == "2g"
    cluster = spark_settings(SparkSpec(
        master="spark://a:7077,b:7077", driver_memory="4g",
        executor={"memory": "8g", "cores": 4, "instances": 3},
        conf={"spark.sql.shuffle.partitions": 400, "spark.sql.adaptive.enabled": True}))
    assert {k: v for k, v in cluster.items() if k not in local or cluster[k] != local[k]} == {
        "spark.master": "spark://a:7077,b:7077", "spark.driver.memory": "4g",
        "spark.executor.memory": "8g", "spark.executor.cores": "4", "spark.executor.instances": "3",
        "spark.cores.max": "12",  # a standalone master counts an application's cores
        "spark.sql.shuffle.partitions": "400", "spark.sql.adaptive.enabled": "true"}
    assert cluster["spark.sql.session.timeZone"] == "UTC"


def test_remote_without_the_spark_connect_client_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyspark")
    monkeypatch.setitem(__import__("sys").modules, "grpc", None)  # as if not installed
    with pytest.raises(EngineError) as err:
        SparkEngine(SparkSpec(remote="sc://spark.example.com:15002"))
    assert err.value.message == (
        "spark.remote (sc://spark.example.com:15002) needs the Spark Connect client, which is not "
        "installed (no module 'grpc'). Install it with 'pip install \"healthscore[spark-connect]\"'.")
