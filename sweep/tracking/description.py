"""The sweep's parent run at a glance: its MLflow description, as Markdown (no MLflow import).

MLflow shows a run's tag "mlflow.note.content" as the run's description, rendered as
Markdown. The parent run's holds the headline, the recommendation's sentences, the classes
hurt first and links to the heatmaps among its artifacts, so that a reviewer reads the
sweep's answer before opening any file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sweep.tracking.names import artifact_url, runs_url

# MLflow's tag of a run's description (mlflow.utils.mlflow_tags.MLFLOW_RUN_NOTE), and the
# longest tag value it stores (mlflow.utils.validation.MAX_TAG_VAL_LENGTH).
DESCRIPTION_TAG = "mlflow.note.content"
DESCRIPTION_LIMIT = 8000


@dataclass(frozen=True)
class RunDescription:
    """What the parent run's description says, in sentences already worded by the report.

    Args:
        headline: The sweep's answer in a sentence or two (original/original and the most
            compressed test setting).
        recommendation: One sentence per storage scenario (recommendation.json's).
        classes_heading: What `classes` are ("First hurt at distance 4 ...").
        classes: One line per class hurt first.
        heatmaps: The heatmaps' artifact names on the parent run.
    """

    headline: str
    recommendation: list[str] = field(default_factory=list)
    classes_heading: str = ""
    classes: list[str] = field(default_factory=list)
    heatmaps: list[str] = field(default_factory=list)


def render_description(
    description: RunDescription, uri: str, experiment_id: str, run_id: str
) -> str:
    """The Markdown of the description, with links into the dashboard of `uri`; cut to what
    MLflow stores (the classes go first, then the links, never the headline)."""
    parts = [f"**{description.headline}**"]
    if description.recommendation:
        parts.append("#### Recommendation\n\n" + bullets(description.recommendation))
    if description.classes:
        parts.append(
            "#### Classes hurt first\n\n"
            + (f"{description.classes_heading}\n\n" if description.classes_heading else "")
            + bullets(description.classes)
        )
    links = [
        f"[{name}]({artifact_url(uri, experiment_id, run_id, name)})"
        for name in description.heatmaps
    ]
    links.append(f"[this sweep's models, in the order of compression]"
                 f"({runs_url(uri, experiment_id, run_id)})")  # fmt: skip
    parts.append("#### Heatmaps\n\n" + bullets(links))
    text = "\n\n".join(parts) + "\n"
    if len(text) > DESCRIPTION_LIMIT:
        text = text[: DESCRIPTION_LIMIT - 2].rsplit("\n", 1)[0] + "\n…"
    return text


def bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
