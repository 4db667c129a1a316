"""The training loop, its configuration, weights on disk and the MLflow tracker."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from superres import precision
from superres.data.degrade import degrade
from superres.errors import ConfigError, SuperresError, WeightsError
from superres.models import create_model
from superres.models.weights import Weights, load_model, load_weights, save_weights
from superres.tracking import MlflowCallback, Tracker
from superres.training import checkpoint, trainer
from superres.training.config import TrainConfig
from superres.training.data import PatchDataset, _dihedral_gather, _dihedral_views
from superres.training.trainer import (
    batch_generator,
    build_optimizer,
    build_scheduler,
    clip_gradients,
    seed_everything,
    train,
)


def smooth_image(size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    image = np.stack([np.sin(6 * x + rng.uniform(0, 3)) * np.cos(5 * y + c) for c in range(3)], -1)
    return ((image + 1) * 127.5).round().astype(np.uint8)


@pytest.fixture(scope="module")
def data():
    images = [smooth_image(64, s) for s in range(3)]
    lrs = [degrade(im, 2) for im in images]
    corners = [(i, j) for i in (0, 16) for j in (0, 16)]
    lr = np.stack([small[i : i + 8, j : j + 8].transpose(2, 0, 1) for small in lrs for i, j in corners])
    hr = np.stack([h[2 * i : 2 * i + 16, 2 * j : 2 * j + 16].transpose(2, 0, 1) for h in images for i, j in corners])
    return PatchDataset(lr, hr), [(lrs[0], images[0])]


def small_edsr():
    return create_model("edsr", scale=2, n_resblocks=1, n_feats=8)


def test_training_lowers_the_loss_and_keeps_the_best_weights(data):
    patches, val = data
    config = TrainConfig(iterations=30, batch_size=4, lr=1e-3, val_every=10, log_every=5)
    result = train(small_edsr(), patches, val, config, scale=2)
    assert [row["step"] for row in result.history] == [10, 20, 30]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.best_psnr_y == max(row["val_psnr_y"] for row in result.history)
    assert result.iterations == 30


def test_seeded_runs_are_repeatable(data):
    patches, val = data
    config = TrainConfig(iterations=6, batch_size=4, val_every=3)
    runs = []
    for _ in range(2):
        seed_everything(config.seed)  # as the train node does, before the model is built
        runs.append(train(small_edsr(), patches, val, config, scale=2).state_dict)
    a, b = runs
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_stops(data):
    patches, val = data
    config = TrainConfig(iterations=200, batch_size=2, lr=1e-9, val_every=1, early_stopping=2)
    result = train(small_edsr(), patches, val, config, scale=2)
    assert result.stopped_early and result.iterations < 200


def test_a_run_that_stopped_early_stays_stopped_when_resumed(data, tmp_path):
    patches, val = data
    config = TrainConfig(iterations=200, batch_size=2, lr=1e-9, val_every=1, early_stopping=2, checkpoint_every=1)
    seed_everything(config.seed)
    stopped = train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path)
    assert stopped.stopped_early and stopped.iterations < 200
    seed_everything(config.seed)
    resumed = train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path, resume=True)
    assert resumed.stopped_early and resumed.resumed_from == resumed.iterations == stopped.iterations
    assert resumed.history == stopped.history and resumed.best_step == stopped.best_step
    assert all(torch.equal(resumed.state_dict[k], stopped.state_dict[k]) for k in stopped.state_dict)


def test_divergence_is_a_clear_error(data):
    patches, val = data
    model = small_edsr()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(Exception, match="diverged at iteration 1"):
        train(model, patches, val, TrainConfig(iterations=3, batch_size=2), scale=2)


def test_bicubic_trains_nothing_but_validates(data):
    patches, val = data
    result = train(create_model("bicubic", scale=2), patches, val, TrainConfig(iterations=5), scale=2)
    assert result.iterations == 0 and len(result.history) == 1 and result.state_dict == {}


def test_config_rejects_unknown_and_bad_values():
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_params({"iterations": 5, "learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="train.iterations"):
        TrainConfig.from_params({"iterations": 0})
    assert TrainConfig.from_params({"lr": 1e-3}, lr=5e-4).lr == 5e-4


def test_weights_roundtrip_and_clear_errors(tmp_path):
    model = small_edsr()
    config = {"architecture": "edsr", "scale": 2, "model": {"n_resblocks": 1, "n_feats": 8}}
    save_weights(tmp_path, Weights(model.state_dict(), config))
    loaded, loaded_config = load_model(tmp_path)
    assert loaded_config == config
    x = torch.rand(1, 3, 6, 6)
    assert torch.equal(loaded(x), model.eval()(x))
    (tmp_path / "weights.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(WeightsError, match="weights.safetensors"):
        load_weights(tmp_path)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(tmp_path / "missing")
    config["model"]["n_feats"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    save_weights(tmp_path / "b", Weights(model.state_dict(), {**config, "model": {"n_resblocks": 1, "n_feats": 8}}))
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsError, match="do not match"):
        load_model(tmp_path / "b")


def test_tracker_records_runs_in_sqlite(tmp_path, data):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "exp")
    run_id = tracker.start_run("edsr", {"model": {"n_feats": 8}, "scale": 2})
    patches, val = data
    train(small_edsr(), patches, val, TrainConfig(iterations=4, batch_size=2, val_every=2, log_every=2), scale=2,
          callbacks=[MlflowCallback(tracker, run_id)])
    tracker.end_run(run_id)
    run = tracker.client.get_run(run_id)
    assert run.info.run_name == "edsr" and run.data.params["model.n_feats"] == "8"
    assert [m.step for m in tracker.client.get_metric_history(run_id, "val/psnr_y")] == [2, 4]
    assert tracker.find_run(run_id) == run_id and tracker.find_run("0" * 32) is None
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()


# --- schedules, EMA, clipping, precision, checkpoints, GAN ------------------------------------


def lr_sequence(config: TrainConfig, steps: int) -> list[float]:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = build_scheduler(optimizer, config)
    lrs = []
    for _ in range(steps):
        lrs.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return lrs


def test_schedules_give_the_expected_learning_rates():
    step = TrainConfig(lr=1.0, scheduler="step", lr_step=2, lr_gamma=0.5)
    assert lr_sequence(step, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    multi = TrainConfig(lr=1.0, scheduler="multistep", milestones=(1, 4), lr_gamma=0.1)
    assert lr_sequence(multi, 5) == pytest.approx([1.0, 0.1, 0.1, 0.1, 0.01])
    cosine = TrainConfig(lr=1.0, scheduler="cosine", iterations=4, lr_min=0.2)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    assert lr_sequence(cosine, 5) == pytest.approx(expected)


def test_the_optimizer_is_adam_or_sgd_with_momentum_and_weight_decay():
    params = [nn.Parameter(torch.zeros(1))]
    adam = build_optimizer(params, TrainConfig(lr=0.5, weight_decay=1e-4))
    sgd = build_optimizer(params, TrainConfig(lr=0.1, optimizer="sgd", momentum=0.8, weight_decay=1e-4))
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["weight_decay"] == 1e-4
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.8 and sgd.defaults["lr"] == 0.1


def test_new_keys_are_checked_and_named():
    for params, key in [({"scheduler": "linear"}, "train.scheduler"), ({"optimizer": "lbfgs"}, "train.optimizer"),
                        ({"weight_decay": -1}, "train.weight_decay"),
                        ({"perceptual_criterion": "l2"}, "train.perceptual_criterion"),
                        ({"scheduler": "multistep"}, "train.milestones"),
                        ({"ema": 1.5}, "train.ema"), ({"grad_clip": -1}, "train.grad_clip"),
                        ({"clip_mode": "max"}, "train.clip_mode"), ({"amp": "fp16"}, "train.amp"),
                        ({"channels_last": "yes"}, "train.channels_last"),
                        ({"checkpoint_every": 0}, "train.checkpoint_every"),
                        ({"gan_start": 0}, "train.gan_start"), ({"gan_type": "wgan"}, "train.gan_type"),
                        ({"milestones": [5, 2]}, "train.milestones"),
                        ({"discriminator": {"n_feats": 4}}, "train.discriminator"),
                        ({"num_workers": 2}, "unknown key.*num_workers")]:
        with pytest.raises(ConfigError, match=key):
            TrainConfig.from_params(params)
    config = TrainConfig.from_params({"scheduler": "multistep", "milestones": [2, 5], "ema": 0.999,
                                      "discriminator": {"name": "vgg"}})
    assert config.milestones == (2, 5) and config.ema == 0.999


def test_ema_weights_are_validated_and_returned(data):
    patches, val = data
    seen = {}

    class Snapshot:  # the raw weights right after each optimiser step
        def on_train_start(self, model, config):
            self.model = model

        def on_log(self, step, metrics):
            seen[step] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    config = TrainConfig(iterations=3, batch_size=2, lr=1e-2, val_every=3, log_every=1, ema=0.5)
    model = small_edsr()
    result = train(model, patches, val, config, scale=2, callbacks=[Snapshot()])
    # torch's EMA: copy at the first update, then ema = 0.5 * ema + 0.5 * weights
    expected = {k: 0.25 * seen[1][k] + 0.25 * seen[2][k] + 0.5 * seen[3][k] for k in seen[1]}
    assert all(torch.allclose(result.state_dict[k], expected[k], atol=1e-6) for k in expected)
    raw = model.state_dict()
    assert not all(torch.equal(result.state_dict[k], raw[k]) for k in raw)


def test_gradient_clipping_modes_bound_the_gradients():
    def clipped(mode: str, lr: float = 0.1) -> torch.Tensor:
        p = nn.Parameter(torch.zeros(100))
        p.grad = torch.linspace(-50, 50, 100)
        clip_gradients([p], TrainConfig(grad_clip=2.0, clip_mode=mode), lr)
        return p.grad

    assert clipped("norm").norm() == pytest.approx(2.0)
    assert clipped("value").abs().max() == pytest.approx(2.0)
    assert clipped("adjustable", lr=0.1).abs().max() == pytest.approx(20.0)  # grad_clip / lr
    assert clipped("adjustable", lr=0.01).abs().max() == pytest.approx(50.0)  # bound 200: nothing clipped


def test_gradient_clipping_changes_a_run(data):
    patches, val = data
    runs = [train(small_edsr(), patches, val, TrainConfig(iterations=3, batch_size=2, lr=1e-2, grad_clip=clip), scale=2)
            for clip in (None, 1e-4)]
    assert not torch.equal(runs[0].state_dict["head.weight"], runs[1].state_dict["head.weight"])


@pytest.mark.parametrize("isa", [None, "AMX"])
def test_amp_and_channels_last_auto_follow_the_cpus_native_bf16(data, monkeypatch, isa):
    """``auto`` trains exactly as the explicit choice it stands for: bf16 + channels_last on a CPU that
    computes bf16 natively, fp32 + channels_last on one that does not; ``off``/``false`` force fp32 NCHW.
    The weights and the optimiser stay fp32 under autocast."""
    monkeypatch.setattr(precision, "native_bf16_isa", lambda: isa)
    patches, val = data

    def run(**keys):
        seed_everything(0)
        model = small_edsr()
        result = train(model, patches, val, TrainConfig(iterations=2, batch_size=2, **keys), scale=2)
        return model, result

    model, auto = run()
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)
    assert model.head.weight.dtype == torch.float32
    assert auto.precision["amp"] == ("bf16" if isa else "off") and auto.precision["channels_last"] is True
    _, explicit = run(amp="bf16" if isa else "off", channels_last=True)
    assert all(torch.equal(auto.state_dict[k], explicit.state_dict[k]) for k in auto.state_dict)
    model, forced = run(amp="off", channels_last=False)
    assert model.head.weight.is_contiguous() and forced.precision["amp"] == "off"
    assert not forced.precision["channels_last"]
    if isa:  # bf16 shows in the weights
        assert not all(torch.equal(auto.state_dict[k], forced.state_dict[k]) for k in auto.state_dict)


def test_under_bf16_autocast_the_losses_are_computed_in_fp32(data, monkeypatch):
    """The networks run in bf16, the loss does not: SSIM's variances (DSSIM, LapSRN's loss) cancel to
    nothing in bf16 and the training diverged."""
    seen = []

    class Spy(nn.Module):
        def forward(self, sr, hr):
            seen.append((sr.dtype, hr.dtype, torch.is_autocast_enabled("cpu")))
            return nn.functional.l1_loss(sr, hr)

    monkeypatch.setattr(trainer, "build_loss", lambda name: Spy())
    patches, val = data
    train(small_edsr(), patches, val, TrainConfig(iterations=2, batch_size=2, amp="bf16"), scale=2)
    assert seen == [(torch.float32, torch.float32, False)] * 2


def test_batches_are_a_function_of_seed_step_and_rank(data):
    patches, _ = data
    a = patches.batch(8, batch_generator(0, 5, 0))
    assert all(torch.equal(x, y) for x, y in zip(a, patches.batch(8, batch_generator(0, 5, 0)), strict=True))
    assert not torch.equal(a[1], patches.batch(8, batch_generator(0, 5, 1))[1])
    assert not torch.equal(a[1], patches.batch(8, batch_generator(0, 6, 0))[1])
    lr, hr = a
    assert lr.dtype == torch.uint8 and lr.shape == (8, 3, 8, 8) and hr.shape == (8, 3, 16, 16)
    # the LR patch is the HR patch's own (degraded) pair under the same dihedral transform
    down = nn.functional.avg_pool2d(hr.float(), 2)
    assert (down - lr.float()).abs().mean() < 3  # a mismatched transform gives ~30


def test_augmentation_applies_one_of_the_eight_dihedral_transforms_to_each_pair():
    """Every sample is its patch flipped and/or transposed, the LR exactly as the HR, and a large
    batch holds all eight transforms; without augmentation the patches come back as stored."""
    hr = np.arange(3 * 6 * 6, dtype=np.uint8).reshape(1, 3, 6, 6)  # no two pixels alike
    lr = hr[..., ::2, ::2].copy()
    patches = PatchDataset(np.repeat(lr, 4, 0), np.repeat(hr, 4, 0))

    def transforms(x):
        return [np.ascontiguousarray(t) for f in (x, x[..., ::-1]) for v in (f, f[..., ::-1, :])
                for t in (v, v.swapaxes(-1, -2))]

    seen = set()
    lr_batch, hr_batch = patches.batch(64, batch_generator(0, 1, 0))
    for lr_sample, hr_sample in zip(lr_batch.numpy(), hr_batch.numpy(), strict=True):
        code = next(i for i, t in enumerate(transforms(hr[0])) if np.array_equal(t, hr_sample))
        assert np.array_equal(transforms(lr[0])[code], lr_sample)
        seen.add(code)
    assert seen == set(range(8))
    plain = PatchDataset(np.repeat(lr, 4, 0), np.repeat(hr, 4, 0), augment=False)
    assert all(np.array_equal(x, hr[0]) for x in plain.batch(8, batch_generator(0, 1, 0))[1].numpy())


@pytest.mark.parametrize("shape", [(16, 3, 6, 6), (16, 1, 4, 6)])
def test_the_cpu_and_gpu_ways_of_augmenting_give_the_same_batch(shape):
    """The CPU copies each sample through a NumPy view, a GPU gathers: the same transform of every
    sample, for all eight codes (each sample its own code twice over) and for non-square patches."""
    x = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    codes = torch.arange(16) % 8
    flips = torch.stack([(codes >> bit) & 1 for bit in range(3)]).bool().reshape(3, 16, 1, 1, 1)
    views, gathered = _dihedral_views(x, flips), _dihedral_gather(x, flips)
    assert views.is_contiguous() and torch.equal(views, gathered)
    assert torch.equal(views[0], x[0]) and not torch.equal(views[1], x[1])


def test_training_crops_are_aligned_windows_of_the_prepared_patches(data):
    patches, _ = data
    lr, hr = patches.batch(8, batch_generator(0, 3, 0), crop=8)
    assert lr.shape == (8, 3, 4, 4) and hr.shape == (8, 3, 8, 8)
    assert (nn.functional.avg_pool2d(hr.float(), 2) - lr.float()).abs().mean() < 3  # still each other's pair
    with pytest.raises(ConfigError, match="train.patch_size"):
        patches.batch(2, batch_generator(0, 3, 0), crop=7)
    with pytest.raises(ConfigError, match="train.patch_size"):
        patches.batch(2, batch_generator(0, 3, 0), crop=32)


def test_divergence_keeps_the_last_good_checkpoint(data, tmp_path):
    patches, val = data
    config = TrainConfig(iterations=50, batch_size=2, lr=1e30, checkpoint_every=1, val_every=100)
    with pytest.raises(SuperresError, match=r"diverged at iteration (\d+).*train\.lr") as info:
        train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path)
    k = int(re.search(r"iteration (\d+)", str(info.value)).group(1))
    state = torch.load(tmp_path / checkpoint.FILENAME, weights_only=True)
    assert state["step"] < k
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_corrupt_and_truncated_checkpoints_are_clear_errors(data, tmp_path):
    patches, val = data
    config = TrainConfig(iterations=2, batch_size=2, checkpoint_every=2)
    train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path)
    path = tmp_path / checkpoint.FILENAME
    good = path.read_bytes()
    for damaged in (good[: len(good) // 2], b"not a checkpoint" * 10):
        path.write_bytes(damaged)
        with pytest.raises(WeightsError, match=r"last\.pt.*delete it, or train without resume"):
            train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path, resume=True)


def test_resume_without_a_checkpoint_starts_afresh(data, tmp_path):
    patches, val = data
    config = TrainConfig(iterations=2, batch_size=2)
    result = train(small_edsr(), patches, val, config, scale=2, checkpoint_dir=tmp_path / "none", resume=True)
    assert result.resumed_from == 0 and result.iterations == 2


class TinyDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyPerceptual(nn.Module):
    """A stand-in feature loss: L1 between fixed random conv features."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.l1_loss(self.features(pred), self.features(target))


@pytest.mark.parametrize("gan_type,relativistic", [("vanilla", False), ("hinge", True)])
def test_gan_trains_the_discriminator_from_gan_start(data, gan_type, relativistic):
    patches, val = data
    discriminator, logged, weights = TinyDiscriminator(), {}, {}

    class Watch:
        def on_log(self, step, metrics):
            logged[step] = metrics
            weights[step] = discriminator.body[0].weight.detach().clone()

    before = discriminator.body[0].weight.detach().clone()
    config = TrainConfig(iterations=5, batch_size=2, log_every=1, val_every=5, gan_start=3, perceptual_weight=1.0,
                         gan_weight=0.1, gan_type=gan_type, relativistic=relativistic)
    result = train(small_edsr(), patches, val, config, scale=2, callbacks=[Watch()], discriminator=discriminator,
                   perceptual=TinyPerceptual())
    assert result.iterations == 5
    assert torch.equal(weights[1], before) and torch.equal(weights[2], before)
    assert not torch.equal(weights[3], before) and not torch.equal(weights[4], weights[3])
    assert set(logged[1]) == {"train_loss", "lr", "pixel"}
    assert {"pixel", "perceptual", "adversarial", "discriminator"} <= set(logged[3])
    assert all(math.isfinite(v) for v in logged[5].values())


def test_gan_without_a_discriminator_is_a_config_error(data):
    patches, val = data
    with pytest.raises(ConfigError, match="train.gan_start"):
        train(small_edsr(), patches, val, TrainConfig(iterations=2, batch_size=2, gan_start=1), scale=2)


class Interrupt:
    """Stops a run as Ctrl-C would, at the log of iteration ``at``."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_log(self, step, metrics):
        if step == self.at:
            raise KeyboardInterrupt


def gan_config(**keys) -> TrainConfig:
    return TrainConfig(iterations=8, batch_size=2, lr=1e-3, log_every=1, val_every=3, gan_start=3, gan_weight=0.1,
                       perceptual_weight=1.0, relativistic=True, ema=0.9, d_lr=2e-4, scheduler="multistep",
                       milestones=(4, 6), checkpoint_every=2, **keys)


def gan_run(data, config, **keys):
    patches, val = data
    seed_everything(config.seed)
    model, discriminator = small_edsr(), TinyDiscriminator()
    result = train(model, patches, val, config, scale=2, discriminator=discriminator, perceptual=TinyPerceptual(),
                   **keys)
    return result, model, discriminator


def test_a_resumed_run_equals_an_uninterrupted_one_bit_for_bit(data, tmp_path):
    """Killed after the checkpoint of iteration 4, resumed: the weights (model, best, discriminator),
    the history and the best step are those of the run that was never interrupted."""
    config = gan_config()
    straight, model, discriminator = gan_run(data, config, checkpoint_dir=tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        gan_run(data, config, checkpoint_dir=tmp_path / "killed", callbacks=[Interrupt(5)])
    resumed, resumed_model, resumed_discriminator = gan_run(data, config, checkpoint_dir=tmp_path / "killed",
                                                            resume=True)
    assert resumed.resumed_from == 4 and resumed.iterations == straight.iterations == 8
    assert resumed.history == straight.history and resumed.best_step == straight.best_step
    for a, b in [(resumed.state_dict, straight.state_dict), (resumed_model.state_dict(), model.state_dict()),
                 (resumed_discriminator.state_dict(), discriminator.state_dict())]:
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def make_state(seed: int) -> checkpoint.TrainState:
    """A state with every component: model, optimiser, schedule, EMA, discriminator and its own."""
    torch.manual_seed(seed)
    model, discriminator = small_edsr(), TinyDiscriminator()
    optimizer = build_optimizer(list(model.parameters()), TrainConfig(lr=1e-3))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-4)
    config = TrainConfig(scheduler="multistep", milestones=(1, 3), lr=1e-3)
    ema = torch.optim.swa_utils.AveragedModel(model, use_buffers=True)
    return checkpoint.TrainState(model, optimizer, build_scheduler(optimizer, config), ema=ema,
                                 discriminator=discriminator, d_optimizer=d_optimizer,
                                 d_scheduler=build_scheduler(d_optimizer, config))


def same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def test_the_train_state_round_trips_through_a_checkpoint_file(tmp_path):
    state = make_state(0)
    for module, optimizer, scheduler in [(state.model, state.optimizer, state.scheduler),
                                         (state.discriminator, state.d_optimizer, state.d_scheduler)]:
        for _ in range(2):  # moments, step counts and the schedule move
            optimizer.zero_grad()
            module(torch.rand(1, 3, 8, 8)).mean().backward()
            optimizer.step()
            scheduler.step()
    state.ema.update_parameters(state.model)
    state.step, state.best_step, state.best_psnr_y, state.running, state.seen = 7, 6, 21.5, 0.25, 3
    state.best_state_dict = {k: v.clone() for k, v in state.model.state_dict().items()}
    state.history = [{"step": 6, "train_loss": 0.1, "lr": 1e-3, "val_psnr_y": 21.5}]
    state.bad_validations, state.seconds = 1, 12.5
    saved = state.state_dict()
    checkpoint.save(tmp_path / checkpoint.FILENAME, {**saved, "metadata": {"run": "x"}})
    restored = make_state(1)  # other weights, fresh optimisers
    torch.manual_seed(123)  # the random states come back too
    restored.load_state_dict(checkpoint.load(tmp_path / checkpoint.FILENAME), source="last.pt")
    again = restored.state_dict()
    assert set(saved) == set(again) == {"format", *checkpoint.TrainState.COMPONENTS, *checkpoint.TrainState.COUNTERS,
                                        "rng"}
    assert 12.5 <= again.pop("seconds") < 60 and saved.pop("seconds") >= 12.5
    assert same(saved, again)


def test_a_checkpoint_that_is_not_understood_is_a_clear_error(tmp_path):
    state = make_state(0)
    path = tmp_path / checkpoint.FILENAME
    for damage, message in [({"format": 99}, r"last\.pt is of format 99, this version reads format 1"),
                            ({"history": None}, r"last\.pt has no history state"),
                            ({"ema": None}, r"last\.pt has no ema state"),
                            ({"d_optimizer": {"state": {}}}, r"last\.pt does not match .*d_optimizer")]:
        saved = {**state.state_dict(), **damage}
        checkpoint.save(path, {k: v for k, v in saved.items() if v is not None})
        with pytest.raises(WeightsError, match=message + r".*delete it, or train without resume"):
            make_state(1).load_state_dict(checkpoint.load(path), source=path)


def test_mlflow_callback_logs_every_number(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    run_id = tracker.start_run("esrgan", {})
    with MlflowCallback(tracker, run_id) as callback:
        callback.on_log(3, {"train_loss": 0.5, "lr": 1e-3, "adversarial": 0.7, "discriminator": 1.2})
    metrics = tracker.client.get_run(run_id).data.metrics
    assert metrics == {"train/loss": 0.5, "train/lr": 1e-3, "train/adversarial": 0.7, "train/discriminator": 1.2}


def test_mlflow_callback_writes_in_batches_and_loses_nothing_on_a_failure(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    run_id = tracker.start_run("srcnn", {})

    def history(key: str) -> list[int]:
        return [m.step for m in tracker.client.get_metric_history(run_id, key)]

    with pytest.raises(RuntimeError, match="diverged"), MlflowCallback(tracker, run_id, flush_seconds=3600) as callback:
        for step in range(1, 601):  # 1200 numbers: more than one log_batch takes
            callback.on_log(step, {"train_loss": 1 / step, "lr": 1e-3})
        assert history("train/loss") == []  # not one transaction per log
        callback.on_validation(300, {"val_psnr_y": 30.0})  # a validation writes what came before it
        assert history("train/loss") == list(range(1, 601)) and history("val/psnr_y") == [300]
        callback.on_log(601, {"train_loss": 0.1, "lr": 1e-3})
        raise RuntimeError("diverged")
    assert history("train/loss") == list(range(1, 602))  # leaving the block wrote the last one

    with MlflowCallback(tracker, run_id, flush_seconds=0) as callback:
        callback.on_log(700, {"train_loss": 0.2})
        assert history("train/loss")[-1] == 700  # due at once: written as it is logged


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_channels_last_compile_ema_and_gan(data):
    patches, val = data
    model = small_edsr()
    config = TrainConfig(iterations=4, batch_size=4, val_every=2, device="cuda", compile=True, ema=0.9, gan_start=2,
                         gan_weight=0.1, grad_clip=1.0)
    result = train(model, patches, val, config, scale=2, discriminator=TinyDiscriminator())
    assert model.head.weight.is_contiguous(memory_format=torch.channels_last)  # 'auto' is on with CUDA
    weights = result.state_dict.values()
    assert all(v.device.type == "cpu" and v.is_contiguous() and torch.isfinite(v).all() for v in weights)
