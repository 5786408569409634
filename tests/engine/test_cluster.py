"""sweep.engine.cluster: cluster=local stays private, joins happen only when asked and say why they
fail, and a real two-node Ray cluster with token authentication, started on this machine, runs
a sweep to a run without Ray's results, directly and through `ray job submit`."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

from sweep.engine import cluster as sweep_cluster
from sweep.engine.cluster import cap_bundles, capped_placement, is_auth_failure, join_ray, start_ray
from sweep.errors import OptionError
from sweep.options import ClusterOptions
from tests.conftest import SMALLER_VIT

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
# The fastest sweep, without the distortion and sensitivity stages: they add time and no Ray path.
FAST_RAY_SWEEP = (
    *SMALLER_VIT,
    "task=imagefolder",
    "train.epochs=1",
    "train.batch_size=8",
    "distortion.enabled=false",
    "sensitivity=off",
    "tracking=none",
    "progress=false",
    "cluster.torch_threads=1",
)


def cluster_options(address: str | None, num_cpus: int | None = None) -> ClusterOptions:
    return ClusterOptions(
        mode="ray",
        address=address,
        num_cpus=num_cpus,
        torch_threads=1,
        encode_shard_size=128,
        max_retries=0,
        eval_gpu_fraction=0.25,
    )


class RecordedInit:
    """Stands in for ray.init: records its keyword arguments, starts nothing."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> None:
        self.calls.append(kwargs)


def free_ports(count: int) -> list[int]:
    """Distinct ports nothing listens on now (held open together, so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def test_local_passes_address_local_whatever_ray_address_says(monkeypatch):
    import ray

    init = RecordedInit()
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    for address in (None, "local"):
        start_ray(cluster_options(address, num_cpus=2))
    assert [call["address"] for call in init.calls] == ["local", "local"]
    assert [call["num_cpus"] for call in init.calls] == [2, 2]


def test_join_passes_no_num_cpus_to_ray_and_says_how_it_caps(monkeypatch, caplog):
    import ray

    init = RecordedInit()
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with caplog.at_level(logging.INFO, logger="sweep.engine.cluster"):
        start_ray(cluster_options("auto", num_cpus=4))
    [call] = init.calls
    # Ray refuses num_cpus when connecting to an existing cluster: a reservation caps instead.
    assert call["address"] == "auto" and "num_cpus" not in call
    assert "cluster.num_cpus=4: the sweep's tasks share a reservation of 4" in caplog.text


def test_the_reservation_fits_the_largest_task_and_a_gpu_per_bundle_where_used():
    one_cpu, training = {"num_cpus": 1}, {"num_cpus": 3, "num_gpus": 1}
    assert cap_bundles(4, one_cpu, gpus=0) == [{"CPU": 1}] * 4
    # Ray places a task inside one bundle: bundles of the largest task's CPUs, never more
    # CPUs in all than num_cpus (7 // 3 = 2 bundles, 6 CPUs).
    assert cap_bundles(7, training, gpus=1) == [{"CPU": 3, "GPU": 1}, {"CPU": 3}]
    assert cap_bundles(7, training, gpus=4) == [{"CPU": 3, "GPU": 1}] * 2
    assert cap_bundles(7, {"num_cpus": 3}, gpus=4) == [{"CPU": 3}] * 2
    with pytest.raises(OptionError, match="cluster.num_cpus.*cannot hold one task of 3"):
        cap_bundles(2, training, gpus=1)
    # A private Ray is sized by num_cpus itself; no cap set, no reservation.
    assert capped_placement(cluster_options("local", 2), [one_cpu], {"CPU": 8}) is None
    assert capped_placement(cluster_options("auto", None), [one_cpu], {"CPU": 8}) is None


def test_join_where_nothing_listens_names_the_address_at_once():
    [port] = free_ports(1)
    started = time.monotonic()
    with pytest.raises(OptionError) as caught:
        join_ray(f"127.0.0.1:{port}", None)
    message = str(caught.value)
    assert caught.value.option == "cluster.address"
    assert f"nothing answers at '127.0.0.1:{port}' (Connection refused)" in message
    assert f"ray start --head --port={port}" in message and "cluster=local" in message
    assert time.monotonic() - started < 5


def test_auto_names_the_ray_address_it_tried(monkeypatch):
    [port] = free_ports(1)
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(OptionError) as caught:
        join_ray("auto", None)
    assert f"'auto' (RAY_ADDRESS=127.0.0.1:{port})" in str(caught.value)


def test_a_missing_token_says_how_to_authenticate(monkeypatch):
    import ray

    def refuse(**kwargs):
        raise ray.exceptions.AuthenticationError(
            "Token authentication is enabled but no authentication token was found"
        )

    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr(sweep_cluster, "check_reachable", lambda address: None)
    with pytest.raises(OptionError) as caught:
        join_ray("10.1.2.3:6379", None)
    message = str(caught.value)
    assert caught.value.option == "cluster.address"
    for words in ("'10.1.2.3:6379'", "RAY_AUTH_MODE=token", "~/.ray/auth_token", "RAY_AUTH_TOKEN"):
        assert words in message


def test_auth_failures_are_found_through_rays_wrapping():
    """ray.init wraps the GCS client's refusal: ConnectionError from RuntimeError, whose text
    holds the last attempt's traceback (as Ray 2.60 raises it for a token the head refuses)."""
    try:
        try:
            raise RuntimeError(
                "Failed to connect to GCS. Last connection error: Traceback ...\n"
                "ray.exceptions.AuthenticationError: InvalidAuthToken: Authentication token "
                "is missing or incorrect"
            )
        except RuntimeError as gcs_failure:
            raise ConnectionError("Failed to connect to Ray cluster at 1.2.3.4:6379") from (
                gcs_failure
            )
    except ConnectionError as wrapped:
        assert is_auth_failure(wrapped)
    assert not is_auth_failure(ConnectionError("Failed to connect to Ray cluster at 1.2.3.4:1"))


# A real cluster on this machine.


@dataclass
class TwoNodeCluster:
    address: str
    dashboard: str
    token: str
    # The environment of the nodes and of a process that joins them: RAY_AUTH_MODE=token and
    # the token in RAY_AUTH_TOKEN.
    env: dict[str, str]

    def get(self, path: str) -> dict:
        """A GET of the dashboard's REST API, with the token."""
        request = urllib.request.Request(
            self.dashboard + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def alive_nodes(self) -> list[str]:
        nodes = self.get("/api/v0/nodes?limit=100")["data"]["result"]["result"]
        return [node["node_id"] for node in nodes if node["state"] == "ALIVE"]

    def finished_tasks(self) -> dict[str, str]:
        """task id -> node id of every finished task the cluster remembers."""
        return {t["task_id"]: t["node_id"] for t in self.tasks() if t["state"] == "FINISHED"}

    def tasks(self) -> list[dict]:
        """Every task the cluster remembers (id, name, job, node, state, ...)."""
        return self.get("/api/v0/tasks?limit=10000&detail=1")["data"]["result"]["result"]


def ray_start(arguments: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own: killing its process group ends every process the node started.
    with log.open("ab") as stream:
        return subprocess.Popen(
            [str(RAY), "start", "--block", *arguments],
            env=env,
            stdout=stream,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_node(process: subprocess.Popen) -> None:
    """SIGTERM to `ray start --block` alone drains the node and ends its processes in a few
    seconds; SIGTERM to the whole group would kill the GCS under the draining head, which then
    waits 30 s for it. SIGKILL to the group then ends whatever did not stop."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is empty: every process of the node has ended
    process.wait()


def processes_of(sessions: set[int], text: str) -> list[int]:
    """Live processes of these sessions, or whose command line names `text` (the temp dir):
    Ray's agents rename themselves (ray::DashboardAgent), so the session is the sure sign."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            session = os.getsid(pid)
        except (OSError, IndexError):
            continue  # ended meanwhile
        if state != "Z" and (session in sessions or text in command):
            found.append(pid)
    return found


def wait_until(condition, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # the dashboard is still starting
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    pytest.fail(f"{what} within {timeout:.0f} s\n{tail}")


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory) -> Iterator[TwoNodeCluster]:
    """A head and a worker node of one CPU each, on their own ports, temp dir and token."""
    with two_node_cluster(tmp_path_factory.mktemp("ray_logs") / "ray_start.log") as cluster:
        yield cluster


@contextmanager
def two_node_cluster(
    log: Path, head_env: dict | None = None, worker_env: dict | None = None
) -> Iterator[TwoNodeCluster]:
    """Starts the two nodes (each with its own extra environment, if given), yields them and
    ends every process they started, by process group."""
    if not RAY.exists():
        pytest.skip(f"no `ray` command next to {sys.executable}")
    # Ray's unix sockets live under the temp dir, and a socket path may not exceed 107 bytes:
    # a short folder of our own, not pytest's deep tmp_path.
    temp = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    token = secrets.token_hex(32)
    # RAY_AUTH_TOKEN comes before any token file, so the user's ~/.ray/auth_token plays no part.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env.pop("RAY_ADDRESS", None)
    gcs, dashboard, client, head_agent, worker_agent = free_ports(5)
    node = [
        "--num-cpus=1",
        "--num-gpus=0",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
    ]
    cluster = TwoNodeCluster(f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}", token, env)
    started: list[subprocess.Popen] = []
    try:
        head_args = [
            "--head",
            f"--port={gcs}",
            f"--temp-dir={temp}",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            f"--ray-client-server-port={client}",
            f"--dashboard-agent-listen-port={head_agent}",
        ]
        started.append(ray_start([*head_args, *node], env | (head_env or {}), log))
        wait_until(lambda: len(cluster.alive_nodes()) == 1, 120, "the head did not start", log)
        # The address as the head announces it (Ray replaces 127.0.0.1 by the node's IP).
        announced = temp / "ray_current_cluster"
        wait_until(announced.exists, 30, "the head did not write its address", log)
        cluster.address = announced.read_text().strip()
        worker_args = [
            f"--address={cluster.address}",
            f"--dashboard-agent-listen-port={worker_agent}",
        ]
        started.append(ray_start([*worker_args, *node], env | (worker_env or {}), log))
        wait_until(lambda: len(cluster.alive_nodes()) == 2, 120, "the worker did not join", log)
        yield cluster
    finally:
        for process in reversed(started):
            stop_node(process)
        sessions = {process.pid for process in started}
        left = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (left := processes_of(sessions, str(temp))):
            time.sleep(0.5)
        # Ours (our sessions, our temp dir), yet outside the groups that were killed: end them
        # too, and fail.
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)
        assert not left, f"processes of the test cluster outlived its process groups: {left}"


def sweep_command(*overrides: str) -> list[str]:
    return [sys.executable, "-m", "sweep", *FAST_RAY_SWEEP, *overrides]


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def results_of(results_dir: Path) -> str:
    [report] = (results_dir / "reports").glob("imagefolder_*")
    return (report / "results.csv").read_text()


def inline_results(imagefolder: Path, tmp_path: Path, grid: tuple[str, ...]) -> str:
    """results.csv of the same sweep without Ray, under tmp_path/inline."""
    inline = run(
        sweep_command(
            *grid,
            f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'inline'}",
            "cluster=inline",
        )
    )
    assert inline.returncode == 0, inline.stderr[-3000:]
    return results_of(tmp_path / "inline")


def wait_for_both_nodes(cluster: TwoNodeCluster, before: dict[str, str]) -> None:
    """Waits until the tasks finished since `before` ran on every node (workers report their
    tasks' states to the head a moment after they run)."""

    def ran_on_both_nodes() -> bool:
        ours = {task: node for task, node in cluster.finished_tasks().items() if task not in before}
        return set(ours.values()) == set(cluster.alive_nodes())

    wait_until(ran_on_both_nodes, 30, "the sweep's tasks did not run on both nodes")


@pytest.mark.slow
def test_sweep_on_two_nodes_matches_a_run_without_ray(two_nodes, imagefolder, tmp_path):
    before = two_nodes.finished_tasks()
    # Two encodes, two trainings and four evaluations: enough to spread over two nodes.
    grid = ("grid.train=[original,4]", "grid.test=[original,4]")
    joined = run(
        sweep_command(
            *grid,
            f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'cluster'}",
            f"cluster.address={two_nodes.address}",
        ),
        env=two_nodes.env,
    )
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert results_of(tmp_path / "cluster") == inline_results(imagefolder, tmp_path, grid)
    wait_for_both_nodes(two_nodes, before)


@pytest.mark.slow
def test_num_cpus_holds_a_joined_sweep_to_its_reservation(two_nodes, imagefolder, tmp_path):
    """Two nodes of one CPU each; cluster.num_cpus=1 reserves one CPU: every task of the
    sweep runs inside the reservation (a placement group), one at a time (without the cap
    they run two at a time, on both nodes, as above)."""
    before = two_nodes.finished_tasks()
    capped = run(
        sweep_command(
            "grid.train=[original,4]",
            "grid.test=[original,4]",
            f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'capped'}",
            f"cluster.address={two_nodes.address}",
            "cluster.num_cpus=1",
        ),
        env=two_nodes.env,
    )
    assert capped.returncode == 0, capped.stderr[-3000:]
    assert "share a reservation of 1 of the cluster's CPUs" in capped.stdout + capped.stderr

    def ours() -> list[dict]:
        return [t for t in two_nodes.tasks() if t["state"] == "FINISHED" and
                t["task_id"] not in before]  # fmt: skip

    # Eight tasks or more (validations, encodes, trainings, evaluations), reported by the
    # workers a moment after they run.
    wait_until(lambda: len(ours()) >= 8, 30, "the sweep's tasks were not reported")
    tasks = ours()
    assert all(task["placement_group_id"] for task in tasks), tasks
    # At most one task at any moment: sorted by start, each starts once the one before ended
    # (within the few milliseconds between a worker's return and its FINISHED event).
    spans = sorted((started_ms(task), task["end_time_ms"]) for task in tasks)
    overlaps = [(a, b) for a, b in zip(spans, spans[1:], strict=False) if b[0] < a[1] - 20]
    assert not overlaps, overlaps


def started_ms(task: dict) -> float:
    """When a task started: its RUNNING event, or (a short task whose RUNNING event Ray
    dropped) its hand-over to the worker."""
    if task["start_time_ms"] is not None:
        return task["start_time_ms"]
    return max(e["created_ms"] for e in task["events"] if e["state"] == "SUBMITTED_TO_WORKER")


def without_the_token(cluster: TwoNodeCluster, home: Path, **auth: str) -> dict[str, str]:
    """The cluster's environment less its token: a HOME without ~/.ray/auth_token (keeping
    matplotlib's font cache, 10 s to rebuild), then `auth`. One connection attempt instead of
    Ray's 20: the error is the same, the test 20 s shorter."""
    env = {key: value for key, value in cluster.env.items() if not key.startswith("RAY_AUTH")}
    return env | {
        "HOME": str(home),
        "MPLCONFIGDIR": matplotlib.get_cachedir(),
        "RAY_gcs_server_port_wait_time_s": "1",
        **auth,
    }


@pytest.mark.slow
def test_join_without_the_clusters_token_exits_2_saying_how_to_authenticate(
    two_nodes, imagefolder, tmp_path
):
    """The usual case: RAY_AUTH_MODE unset, which a join to an explicit address leaves off."""
    result = run(
        sweep_command(
            f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'out'}",
            f"cluster.address={two_nodes.address}",
        ),
        env=without_the_token(two_nodes, tmp_path),
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"cluster.address: cannot authenticate to the Ray cluster at '{two_nodes.address}'"
        in result.stderr
    )
    assert "RAY_AUTH_MODE=token" in result.stderr and "~/.ray/auth_token" in result.stderr


JOIN_PROBE = """
import sys
from sweep.engine.cluster import join_ray
from sweep.errors import OptionError
try:
    join_ray(sys.argv[1], None)
except OptionError as error:
    print(error)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "auth",
    [
        pytest.param({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}, id="wrong-token"),
        pytest.param({"RAY_AUTH_MODE": "token"}, id="token-mode-without-a-token"),
    ],
)
def test_a_wrong_or_missing_token_says_how_to_authenticate(two_nodes, tmp_path, auth):
    # Just the join (the sweep's own start-up, 10 s, is the same as above).
    result = run(
        [sys.executable, "-c", JOIN_PROBE, two_nodes.address],
        env=without_the_token(two_nodes, tmp_path, **auth),
        timeout=120,
    )
    assert (
        f"cluster.address: cannot authenticate to the Ray cluster at '{two_nodes.address}'"
        in result.stdout
    )
    assert "RAY_AUTH_MODE=token" in result.stdout and "RAY_AUTH_TOKEN" in result.stdout


PRIVATE_PROBE = """
import json, ray
from sweep.engine.cluster import start_ray
from sweep.options import ClusterOptions
start_ray(ClusterOptions("ray", None, 1, 1, 128, 0, 0.25))
# A task too: workers inherit RAY_ADDRESS from the driver, and must run all the same.
assert ray.get(ray.remote(lambda: 1).remote()) == 1
print(json.dumps({"gcs": ray.get_runtime_context().gcs_address, "nodes": len(ray.nodes()),
                  "cpus": ray.cluster_resources()["CPU"]}))
ray.shutdown()
"""


@pytest.mark.slow
def test_local_is_private_while_ray_address_names_a_running_cluster(two_nodes):
    env = two_nodes.env | {"RAY_ADDRESS": two_nodes.address}
    result = run([sys.executable, "-c", PRIVATE_PROBE], env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    private = json.loads(result.stdout.strip().splitlines()[-1])
    assert private["gcs"] != two_nodes.address
    assert private == {"gcs": private["gcs"], "nodes": 1, "cpus": 1.0}
    assert len(two_nodes.alive_nodes()) == 2


@pytest.mark.slow
def test_ray_job_submit_runs_a_sweep_on_the_cluster(two_nodes, imagefolder, tmp_path):
    before = two_nodes.finished_tasks()
    # cluster=ray joins `auto`, which is RAY_ADDRESS: Ray sets it for a job's entrypoint.
    # The entrypoint runs on the head, which is this machine: the checkout's interpreter and
    # data serve it as they are (a remote head needs `--working-dir .` and its own installs).
    entrypoint = sweep_command(
        f"task.root={imagefolder}",
        f"results_dir={tmp_path / 'job'}",
        "cluster=ray",
        "grid.train=[original]",
        "grid.test=[original]",
    )
    job = f"sweep-test-{secrets.token_hex(4)}"
    # The CLI quotes each word after `--` for the entrypoint's shell.
    submitted = run(
        [str(RAY), "job", "submit", f"--address={two_nodes.dashboard}", f"--submission-id={job}"]
        + ["--", *entrypoint],
        env=two_nodes.env,
    )
    assert submitted.returncode == 0, (submitted.stdout + submitted.stderr)[-3000:]
    assert two_nodes.get(f"/api/jobs/{job}")["status"] == "SUCCEEDED"
    rows = results_of(tmp_path / "job").splitlines()
    assert len(rows) == 2  # the header and original/original
    wait_until(
        lambda: len(set(two_nodes.finished_tasks()) - set(before)) >= 2,
        30,
        "the job's sweep ran no task on the cluster",
    )
