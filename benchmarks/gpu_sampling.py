"""What `make gpu-check` measures with: the GPU's utilisation sampled in a background thread,
the moments of the training steps, and the GPU torch uses."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time

SAMPLE_PERIOD_S = 0.2


class GpuSampler:
    """GPU utilisation (%) every SAMPLE_PERIOD_S in a background thread: NVML (nvidia-ml-py)
    where it is installed, else `nvidia-smi -lms`; nothing on a machine with neither."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.samples: list[tuple[float, float]] = []  # (time.perf_counter(), percent)
        self.source = "none"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._smi: subprocess.Popen | None = None

    def __enter__(self) -> GpuSampler:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(self.index)
            self.source = "nvml"
            self._thread = threading.Thread(target=self._nvml, args=(pynvml, handle), daemon=True)
        except Exception:  # no nvidia-ml-py, or no driver: try the command-line tool
            smi = shutil.which("nvidia-smi")
            if smi is not None:
                self.source = "nvidia-smi"
                self._smi = subprocess.Popen(
                    [smi, "-i", str(self.index), "--query-gpu=utilization.gpu"]
                    + ["--format=csv,noheader,nounits", f"-lms={int(SAMPLE_PERIOD_S * 1000)}"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                self._thread = threading.Thread(target=self._read_smi, daemon=True)
        if self._thread is not None:
            self._thread.start()
        return self

    def _nvml(self, pynvml, handle) -> None:
        while not self._stop.wait(SAMPLE_PERIOD_S):
            rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
            self.samples.append((time.perf_counter(), float(rates.gpu)))

    def _read_smi(self) -> None:
        for line in self._smi.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append((time.perf_counter(), float(line.strip())))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._smi is not None:
            self._smi.terminate()
            self._smi.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def between(self, start: float, stop: float) -> list[float]:
        return [percent for moment, percent in self.samples if start <= moment <= stop]


class StepClock:
    """Wraps a task kind's `training_loss` to note when each step starts and its images: the
    steady-state rate and the window of GPU samples come from these moments."""

    def __init__(self, task) -> None:
        self.moments: list[float] = []
        self.images: list[int] = []
        original = task.training_loss

        def training_loss(module, batch, device):
            self.moments.append(time.perf_counter())
            loss, images = original(module, batch, device)
            self.images.append(images)
            return loss, images

        task.training_loss = training_loss  # this instance only

    def window(self, warmup: int) -> tuple[float, float, int, int]:
        """(start, stop, steps, images) of the steps after the first `warmup` (fewer when
        there are not that many), up to the last step's start."""
        first = min(warmup, max(len(self.moments) - 2, 0))
        start, stop = self.moments[first], self.moments[-1]
        return start, stop, len(self.moments) - 1 - first, sum(self.images[first:-1])


def cuda_index() -> int:
    """The NVML index of the GPU torch uses (CUDA_VISIBLE_DEVICES' first, if it is a number)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(visible) if visible.isdigit() else 0
