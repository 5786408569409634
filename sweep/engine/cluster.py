"""Starts the sweep's Ray: a private one on this machine, or a join to a running cluster.

`ray.init()` without an address attaches to RAY_ADDRESS or to the newest cluster that `ray start`
left on the machine, so a plain call can land a `cluster=local` sweep on somebody else's Ray. A
private start therefore passes address="local", which Ray never resolves to a running cluster,
and a join happens only when `cluster.address` asks for one. A join that fails says why (nothing
answers at the address, or the cluster wants an authentication token) and what to do.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import sweep
from sweep.errors import OptionError
from sweep.options import ClusterOptions

log = logging.getLogger(__name__)

# cluster.address values that mean "start a private Ray" rather than "join one".
PRIVATE_ADDRESSES = (None, "", "local")
# Ray resolves this itself: RAY_ADDRESS, else the newest `ray start` cluster of this machine.
AUTO_ADDRESS = "auto"
# How long the reachability check waits for the head to accept a TCP connection; Ray's own
# connect retries for about 20 attempts before it gives up on an address where nothing listens.
CONNECT_TIMEOUT_S = 5.0
# What Ray 2.60 says when the cluster refuses the token (or its absence): the gRPC status of its
# server interceptor, the C++ status text, and the Python exception's message.
AUTH_FAILURE_MARKERS = (
    "unauthenticated",
    "invalidauthtoken",
    "authentication token",
    "authenticationerror",
)
AUTH_FIX = (
    "set RAY_AUTH_MODE=token and give this machine the cluster's token, either as the file "
    "~/.ray/auth_token copied from the head (or any file named by RAY_AUTH_TOKEN_PATH) or as "
    "RAY_AUTH_TOKEN=<token> (`ray get-auth-token` on the head prints it)"
)


def start_ray(cluster: ClusterOptions) -> None:
    """Starts a private Ray (cluster.address unset or 'local') or joins the cluster it names."""
    if cluster.address in PRIVATE_ADDRESSES:
        start_private_ray(cluster.num_cpus)
    else:
        join_ray(cluster.address, cluster.num_cpus)


def start_private_ray(num_cpus: int | None) -> None:
    """A Ray of this process alone, whatever RAY_ADDRESS or `ray start` left on the machine.

    Args:
        num_cpus: CPUs the private Ray offers its tasks; None offers every core.
    """
    import ray

    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=True)


def join_ray(address: str, num_cpus: int | None) -> None:
    """Joins the running cluster at `address` and ships this package to its workers.

    Args:
        address: host:port of the head's GCS, ray://host:port for Ray Client, or 'auto'.
        num_cpus: cluster.num_cpus; Ray takes none when joining, so `capped_placement`
            holds the sweep's tasks to that many CPUs.

    Raises:
        OptionError: naming cluster.address, when nothing answers there or the cluster refuses
            this process's authentication token.
    """
    import ray  # Ray loads only when a sweep starts it

    if num_cpus is not None:
        # Ray refuses num_cpus when joining (the nodes offer what `ray start --num-cpus` gave
        # them): the sweep's tasks are held to a reservation of that many instead.
        log.info(
            "cluster.num_cpus=%d: the sweep's tasks share a reservation of %d of the "
            "cluster's CPUs (a placement group), leaving the rest to others",
            num_cpus,
            num_cpus,
        )
    check_reachable(address)
    where = describe_address(address)
    log.info("joining the Ray cluster at %s", where)
    # The nodes need the pinned dependencies installed; the package travels with the job. As a
    # path, not the module: inside `ray job submit` Ray deep-copies it into the job's runtime_env,
    # and a module object cannot be copied.
    package = str(Path(sweep.__file__).parent)
    try:
        ray.init(address=address, log_to_driver=True, runtime_env={"py_modules": [package]})
    except (ray.exceptions.RayError, ConnectionError, RuntimeError, ValueError) as error:
        # ValueError: an address Ray cannot parse.
        if is_auth_failure(error):
            raise OptionError(
                f"cannot authenticate to the Ray cluster at {where} (it uses token "
                f"authentication; this process has no token, or another one): {AUTH_FIX}",
                option="cluster.address",
            ) from None
        raise OptionError(
            f"cannot join the Ray cluster at {where} ({first_line(error)}): start it with "
            "`ray start --head` on the head node, fix the address (host:port of the head, as "
            "`ray start --head` printed it), or use cluster=local",
            option="cluster.address",
        ) from None


def describe_address(address: str) -> str:
    """The address as the user gave it, plus where 'auto' looks (for log lines and errors)."""
    if address != AUTO_ADDRESS:
        return f"'{address}'"
    from_environment = os.environ.get("RAY_ADDRESS")
    if from_environment:
        return f"'auto' (RAY_ADDRESS={from_environment})"
    return "'auto' (the newest `ray start` cluster of this machine)"


def host_and_port(address: str) -> tuple[str, int] | None:
    """(host, port) of 'host:port', 'ray://host:port' or '[v6]:port'; None for anything else."""
    if address == AUTO_ADDRESS:
        address = os.environ.get("RAY_ADDRESS") or ""
    address = address.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def check_reachable(address: str) -> None:
    """Fails at once, naming the address, when nothing accepts a connection at host:port.

    Without this Ray retries for a long while and then reports a GCS connection failure that
    does not say which option to fix.
    """
    target = host_and_port(address)
    if target is None:
        return
    host, port = target
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except socket.gaierror as error:
        raise OptionError(
            f"unknown host '{host}' in {describe_address(address)} ({error.strerror}): give the "
            "head node's host name or IP address, or use cluster=local",
            option="cluster.address",
        ) from None
    except OSError as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or error
        raise OptionError(
            f"nothing answers at {describe_address(address)} ({reason}): "
            f"start the head there with `ray start --head --port={port}`, fix the address "
            "(host:port of the head, as `ray start --head` printed it), or use cluster=local",
            option="cluster.address",
        ) from None


def is_auth_failure(error: BaseException) -> bool:
    """Whether the error, or any error it was raised from, is Ray refusing the token."""
    import ray

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ray.exceptions.AuthenticationError):
            return True
        # Ray wraps the GCS client's failure in RuntimeError and then ConnectionError, keeping
        # only the last attempt's traceback as text.
        text = f"{type(current).__name__}: {current}".lower()
        if any(marker in text for marker in AUTH_FAILURE_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def cap_bundles(num_cpus: int, largest: dict, gpus: float) -> list[dict]:
    """The bundles of a reservation of `num_cpus` CPUs that every task fits in: as many
    bundles of the largest task's CPUs as fit (Ray places a task inside one bundle), the first
    of them with one GPU each while the cluster has GPUs and the largest task uses one.

    Raises:
        OptionError: naming cluster.num_cpus, when not even the largest task fits.
    """
    size = max(1, int(largest.get("num_cpus", 1)))
    if num_cpus < size:
        raise OptionError(
            f"{num_cpus} CPUs cannot hold one task of {size} (train.loader_workers plus "
            "one): raise cluster.num_cpus or lower train.loader_workers",
            option="cluster.num_cpus",
        )
    count = num_cpus // size
    with_gpu = min(count, int(gpus)) if largest.get("num_gpus", 0) else 0
    return [{"CPU": size, "GPU": 1}] * with_gpu + [{"CPU": size}] * (count - with_gpu)


class CappedPlacement:
    """A joined sweep held to cluster.num_cpus CPUs: a placement group of `cap_bundles`, its
    scheduling strategy for every task, removed when the sweep's tasks are done."""

    def __init__(self, bundles: list[dict], timeout_s: float = 300.0) -> None:
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.group = placement_group(bundles, strategy="PACK")
        ready, _ = ray.wait([self.group.ready()], timeout=timeout_s)
        if not ready:
            self.release()
            raise OptionError(
                f"the cluster could not reserve {sum(b['CPU'] for b in bundles)} CPUs in "
                f"{len(bundles)} bundles {bundles[0]} within {timeout_s:.0f} s (busy, or no "
                "node large enough): lower cluster.num_cpus or train.loader_workers",
                option="cluster.num_cpus",
            )
        self.strategy = PlacementGroupSchedulingStrategy(
            placement_group=self.group, placement_group_capture_child_tasks=True
        )

    def release(self) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.group)


def capped_placement(
    cluster: ClusterOptions, wanted: list[dict], resources: dict
) -> CappedPlacement | None:
    """The reservation that holds a joined sweep to cluster.num_cpus (None: a private Ray,
    sized by num_cpus itself, or no cap)."""
    if cluster.address in PRIVATE_ADDRESSES or cluster.num_cpus is None or not wanted:
        return None
    largest = max(wanted, key=lambda w: (w.get("num_cpus", 1), w.get("num_gpus", 0)))
    if any(w.get("num_gpus", 0) for w in wanted):
        largest = {**largest, "num_gpus": max(w.get("num_gpus", 0) for w in wanted)}
    return CappedPlacement(cap_bundles(cluster.num_cpus, largest, resources.get("GPU", 0)))
