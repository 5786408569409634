"""The `sensitivity` config group, validated: plain data, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

from sweep.errors import OptionError

# The task kind whose models the maps are for: they differentiate class probabilities.
TASK_KIND = "classification"
# The colour channels of the maps, in their order (JFIF YCbCr).
CHANNELS = ("Y", "Cb", "Cr")
METHODS = ("gradient", "finite")
STATISTICS = ("clean_prob", "l1")
CHROMA_SUBSAMPLINGS = ("4:4:4", "4:2:0")
ALL_BLOCKS = "all"


@dataclass(frozen=True)
class SensitivityOptions:
    """How the DCT sensitivity maps of a sweep's classifiers are measured.

    Attributes:
        enabled: Plan a sensitivity stage per trained classifier and method.
        images: Test images (original setting), a seeded sample; the reference study used 32.
        epsilon: The finite method's coefficient change, in JPEG's 0-255 pixel units.
        method: "gradient" and/or "finite" (sweep/sensitivity/methods.py); kept in this order.
        blocks: Blocks per image and channel the finite method perturbs: "all" or a seeded
            sample of that many. The gradient method always covers every block.
        statistic: "clean_prob" (change of the clean prediction's probability) and/or "l1"
            (L1 change over the classes).
        chroma_subsampling: The grid of the chroma blocks: "4:2:0" (JPEG's default; what a
            tuned JPEG quantises) or "4:4:4".
        bootstrap: Resamples of the images behind each interval (report only: 0 for none).
    """

    enabled: bool = True
    images: int = 32
    epsilon: float = 1.0
    method: tuple[str, ...] = ("gradient",)
    blocks: int | str = 4
    statistic: tuple[str, ...] = STATISTICS
    chroma_subsampling: str = "4:2:0"
    bootstrap: int = 1000

    @property
    def sampled_blocks(self) -> int | None:
        """The finite method's blocks per image and channel; None for all."""
        return None if self.blocks == ALL_BLOCKS else int(self.blocks)


def sensitivity_options(values: dict | None) -> SensitivityOptions:
    """The `sensitivity` section, checked; raises OptionError naming the option."""
    if values is None:
        return SensitivityOptions(enabled=False)
    known = SensitivityOptions.__dataclass_fields__
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise OptionError(f"unknown option; known: {list(known)}", f"sensitivity.{unknown[0]}")
    values = dict(values)
    for name, allowed in (("method", METHODS), ("statistic", STATISTICS)):
        chosen = values.get(name, getattr(SensitivityOptions, name))
        chosen = [chosen] if isinstance(chosen, str) else list(chosen)
        bad = [item for item in chosen if item not in allowed]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise OptionError(
                f"{chosen!r}: list one or more of {list(allowed)}, each once", f"sensitivity.{name}"
            )
        values[name] = tuple(item for item in allowed if item in chosen)  # one order: one key
    options = SensitivityOptions(**values)
    if not isinstance(options.enabled, bool):
        raise OptionError(f"must be true or false, got {options.enabled!r}", "sensitivity.enabled")
    for name, minimum in (("images", 1), ("bootstrap", 0)):
        value = getattr(options, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise OptionError(
                f"must be an integer >= {minimum}, got {value!r}", f"sensitivity.{name}"
            )
    epsilon = options.epsilon
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float) or not epsilon > 0:
        raise OptionError(
            f"must be a positive number of coefficient units, got {epsilon!r}",
            "sensitivity.epsilon",
        )
    blocks = options.blocks
    if blocks != ALL_BLOCKS and (
        isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 1
    ):
        raise OptionError(
            f"must be 'all' or a number of blocks >= 1 per image and channel, got {blocks!r}",
            "sensitivity.blocks",
        )
    if options.chroma_subsampling not in CHROMA_SUBSAMPLINGS:
        raise OptionError(
            f"'{options.chroma_subsampling}' is not one of {list(CHROMA_SUBSAMPLINGS)}",
            "sensitivity.chroma_subsampling",
        )
    return options
