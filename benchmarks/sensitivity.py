"""The two sensitivity methods on the demo's trained model: speed ratio and agreement.

The model is the demo sweep's classifier trained on the original images (`make demo` trains
it; without it, this benchmark trains it first through the sweep's own stages, a few minutes
on two cores). On the same `IMAGES` original test images, with both statistics:

* `finite`, the reference study's procedure over every block (64 x 3 x blocks forward passes
  per image: the cost the study pays), once;
* `gradient`, its first-order equivalent (1 + classes backward passes per batch), the fastest
  of `rounds`.

Reported: seconds per image of each, their ratio (goal: gradient at least 100x faster), and
the Spearman correlation of their mean maps over the 192 (channel, frequency) values per
statistic (goal: at least 0.9).
"""

from __future__ import annotations

import time

from scipy.stats import spearmanr

IMAGES = 2
ROUNDS = 3


def demo_model():
    """(sweep, the training on originals, the test files of the benchmark's images)."""
    from hydra import compose, initialize_config_dir

    from sweep.codecs.base import ORIGINAL
    from sweep.config.build import build_sweep
    from sweep.config.compose import CONFIG_DIR
    from sweep.session.planning import plan_sweep, run_part, screen, shutdown_ray
    from sweep.stages.encode import encoded_files
    from sweep.stages.sensitivity import sample_indices

    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("config", overrides=["tracking=none", "progress=false"])
    sweep = build_sweep(cfg)
    # The images as the demo's validation kept them: the keys of the demo's own stages.
    plan = plan_sweep(sweep, screen(sweep))
    train = plan.trains[ORIGINAL]
    encode = plan.encodes[("test", ORIGINAL)]
    if not (sweep.store.is_done("train", train.key) and sweep.store.is_done("encode", encode.key)):
        print("sensitivity benchmark: training the demo's original model first", flush=True)
        try:
            run_part(sweep, plan, plan.narrowed_to([train, encode]))
        finally:
            shutdown_ray()
    files = encoded_files(sweep.store, encode)
    chosen = sample_indices(len(files), sweep.sensitivity.images, sweep.seed)[:IMAGES]
    return sweep, train, [files[index] for index in chosen]


def run(rounds: int = ROUNDS) -> dict:
    import torch
    from sweep.sensitivity.measure import classifier_of, model_inputs

    from sweep.models.trained import load_trained
    from sweep.sensitivity.methods import finite_maps, gradient_maps

    sweep, train, files = demo_model()
    options = sweep.sensitivity
    weights = sweep.store.path("train", train.key)
    module = load_trained(
        sweep.model, weights, len(sweep.reader.class_names()), torch.device("cpu")
    )
    classifier = classifier_of(sweep.model, module.requires_grad_(False))
    images = model_inputs(sweep.model, files)
    statistics = options.statistic
    gradient_maps(classifier, images[:1], statistics, options.chroma_subsampling)  # warm up
    best, gradient = float("inf"), None
    for _ in range(rounds):
        started = time.perf_counter()
        gradient = gradient_maps(classifier, images, statistics, options.chroma_subsampling)
        best = min(best, time.perf_counter() - started)
    started = time.perf_counter()
    finite = finite_maps(
        classifier,
        images,
        statistics,
        options.epsilon,
        options.chroma_subsampling,
        blocks=None,
        seed=sweep.seed,
        batch_size=sweep.options.eval_batch_size,
    )
    finite_seconds = time.perf_counter() - started
    agreement = {
        name: float(
            spearmanr(
                finite.maps[name].mean(0).ravel(), gradient.maps[name].mean(0).ravel()
            ).statistic
        )
        for name in statistics
    }
    return {
        "model": f"{sweep.model.name} trained on original ({train.key})",
        "images": len(images),
        "image_size": int(images.shape[-1]),
        "statistics": list(statistics),
        "chroma_subsampling": options.chroma_subsampling,
        "epsilon": options.epsilon,
        "finite_forward_passes": finite.passes,
        "finite_s_per_image": finite_seconds / len(images),
        "gradient_backward_passes": gradient.passes,
        "gradient_s_per_image": best / len(images),
        "speed_ratio": finite_seconds / best,
        "spearman": agreement,
        "threads": torch.get_num_threads(),
    }


def report(figures: dict) -> str:
    agreement = ", ".join(f"{name} {rho:.3f}" for name, rho in figures["spearman"].items())
    return "\n".join(
        [
            f"sensitivity maps, {figures['model']}, {figures['images']} test images at "
            f"{figures['image_size']} px, {figures['chroma_subsampling']}, eps "
            f"{figures['epsilon']}:",
            f"  finite (every block, {figures['finite_forward_passes']} forward passes): "
            f"{figures['finite_s_per_image']:.2f} s/image",
            f"  gradient ({figures['gradient_backward_passes']} backward passes): "
            f"{figures['gradient_s_per_image'] * 1000:.1f} ms/image",
            f"  speed ratio finite / gradient: {figures['speed_ratio']:.0f}x (goal >= 100x)",
            f"  Spearman correlation of the maps: {agreement} (goal >= 0.9)",
        ]
    )


if __name__ == "__main__":
    print(report(run()))
