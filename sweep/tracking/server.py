"""Whether the tracking server answers: asked before any work, and by a deferring tracker."""

from __future__ import annotations

import urllib.error
import urllib.request

from sweep.errors import OptionError


def check_tracking_server(uri: str, timeout: float = 5.0) -> None:
    """For a server URI, checks that an MLflow server answers before any work starts; raises
    OptionError naming tracking.uri (MLflow's own client would retry for minutes)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout):
            pass
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise OptionError(
            f"no MLflow server answers at {uri} ({reason}): start it, fix the "
            f"address, or use tracking=local",
            option="tracking.uri",
        ) from None
