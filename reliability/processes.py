"""The processes of one sweep: /proc reading, and a run that tracks, kills and reaps them all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from reliability.sweep_command import REPO, sweep_env

# Ray's processes exit within a second of the driver; anything still there after this leaked.
EXIT_GRACE_SECONDS = 15.0


@dataclass(frozen=True)
class Proc:
    """One process from /proc/<pid>/stat; (pid, start) names it even after pid reuse."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int

    @property
    def ident(self) -> tuple[int, int]:
        return self.pid, self.start


def read_proc(pid: int) -> Proc | None:
    """The process's stat fields, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], int(fields[19]))


def list_processes() -> dict[int, Proc]:
    processes = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                processes[proc.pid] = proc
    return processes


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_running(ident: tuple[int, int]) -> bool:
    """Whether that very process still runs; a zombie has finished (its parent reaps it)."""
    proc = read_proc(ident[0])
    return proc is not None and proc.start == ident[1] and proc.state not in ("Z", "X")


class SweepRun:
    """One `python -m sweep` in a new session, with every process it starts tracked.

    The driver leads its own session and process group, which Ray's processes inherit. A
    process that left the group would still be a descendant of the driver while the driver
    lives, so the tree is sampled at every poll: after the kill, orphans are reparented and
    the tree no longer shows them.

    Args:
        argv: The command.
        log_prefix: Its stdout and stderr go to <log_prefix>.out and <log_prefix>.err.
    """

    def __init__(self, argv: list[str], log_prefix: Path) -> None:
        self.stdout_path = log_prefix.with_suffix(".out")
        self.stderr_path = log_prefix.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # Files, not pipes: nobody reads a pipe while we wait, and a full one blocks Ray.
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=sweep_env(), stdout=out, stderr=err, start_new_session=True
            )
        self.started = time.monotonic()
        self.group = self.process.pid
        driver = read_proc(self.process.pid)
        self.known: set[tuple[int, int]] = {driver.ident} if driver else set()

    def family(self) -> dict[int, Proc]:
        """The live processes of this sweep: its group, its session, the driver's descendants."""
        processes = list_processes()
        children: dict[int, list[int]] = {}
        for proc in processes.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        members = {
            pid
            for pid, proc in processes.items()
            if self.group in (proc.pgid, proc.sid) or proc.ident in self.known
        }
        stack = list(members)
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in members:
                    members.add(child)
                    stack.append(child)
        family = {pid: processes[pid] for pid in members if processes[pid].state not in ("Z", "X")}
        self.known |= {proc.ident for proc in family.values()}
        return family

    def exited(self) -> bool:
        return self.process.poll() is not None

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def survivors(self) -> list[int]:
        alive = {ident for ident in self.known if is_running(ident)}
        return sorted({pid for pid, _ in alive} | set(self.family()))

    def kill(self) -> list[int]:
        """SIGKILLs the driver, then its process group and every tracked process until none runs.

        Returns:
            The processes still running after EXIT_GRACE_SECONDS (should be none).
        """
        self.family()
        if not self.exited():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return self.reap(kill=True)

    def reap(self, kill: bool) -> list[int]:
        """Waits until no process of the sweep runs, SIGKILLing them when kill is set.

        Without kill, the survivors get EXIT_GRACE_SECONDS to exit on their own first (Ray
        stops its processes on a clean shutdown); those still there are killed and returned.
        """
        deadline = time.monotonic() + EXIT_GRACE_SECONDS
        leaked: list[int] = []
        while survivors := self.survivors():
            if kill or time.monotonic() > deadline:
                if not kill:
                    leaked = survivors
                    kill = True
                try:
                    os.killpg(self.group, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # the group is empty; tracked processes may have left it
                for pid in survivors:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline + EXIT_GRACE_SECONDS:
                    return survivors
            time.sleep(0.05)
        return leaked

    def wait(self, timeout: float) -> tuple[int, list[int]]:
        """Waits for the sweep to exit on its own (killing it after timeout seconds).

        Returns:
            The exit code (-9 when it had to be killed) and the processes that outlived it.
        """
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                self.kill()
                return -signal.SIGKILL, []
            self.family()
            time.sleep(0.2)
        return self.process.returncode, self.reap(kill=False)

    def stderr_tail(self, chars: int = 1500) -> str:
        return self.stderr_path.read_text(errors="replace")[-chars:]
