"""The fast recipe (experiment=fast_cifar10): the fast net and its stems, the per-step schedule,
the scaled EMA, and every scheme through the experiment. Accuracy is measured in bench/, not here."""

import json

import numpy as np
import pytest
import torch

from leia import ciphers
from leia.errors import InputError
from leia.models.averaging import ScaledEMA
from leia.models.classifier import SCHEDULES, EncryptedClassifier, OptimConfig, ScheduleConfig
from leia.models.fastnet import FastNet, WhiteningConv
from leia.training import fastnet_stem
from tests.attacks.helpers import cifar_folder
from tests.helpers import CONF, FAST, run_train
from tests.train.test_train_e2e import train_cli

SCHEMES = sorted(p.stem for p in (CONF / "scheme").glob("*.yaml") if not p.stem.startswith("vit_block"))


def test_the_whitening_stem_whitens_its_patches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 3, 12, 12, generator=g)
    x = x + 2 * x.roll(1, dims=-1) + torch.tensor([3.0, -1.0, 0.5])[:, None, None]  # correlated, off-centre
    for k, s in ((2, 1), (4, 4)):
        conv = WhiteningConv(3, k, s)
        conv.fit(x)
        y = conv(x)
        half = y[:, : conv.out_channels // 2].permute(0, 2, 3, 1).reshape(-1, conv.out_channels // 2)
        assert torch.allclose(half.mean(0), torch.zeros(half.shape[1]), atol=1e-3)
        cov = torch.cov(half.T)
        assert torch.allclose(cov, torch.eye(len(cov)), atol=0.02), (k, cov.diagonal())
        assert torch.allclose(y[:, conv.out_channels // 2:], -y[:, : conv.out_channels // 2], atol=1e-5)  # ± pairs
        assert not conv.weight.requires_grad and conv.bias.requires_grad  # frozen, but its bias trains


@pytest.mark.parametrize("scheme,adapter,stem,block", [
    ("plain", "none", "whiten", None), ("skk", "none", "whiten", None), ("tanaka", "none", "block", 4),
    ("ele", "none", "block", 4), ("etc", "none", "block", 4), ("tanaka", "tanaka", "learned", None),
])
def test_each_scheme_gets_its_stem(scheme, adapter, stem, block):
    options = fastnet_stem({"stem": "auto"}, ciphers.create(scheme, seed=0), adapter)
    assert options["stem"] == stem and options.get("block_size") == block
    net = FastNet(10, 3, (8, 16, 16), **options)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_a_block_stem_that_straddles_the_schemes_blocks_is_refused():
    with pytest.raises(InputError, match="must see whole tanaka blocks of 8x8"):
        fastnet_stem({"stem": "block", "block_size": 4}, ciphers.create("tanaka", seed=0, block_size=8), "none")


def test_the_linear_schedule_is_a_whole_run_at_any_length():
    for steps in (10, 1000):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
        sched = SCHEDULES.get("linear")(opt, ScheduleConfig(name="linear", warmup_fraction=0.2, final_lr=0.1), 1, steps)
        lrs = []
        for _ in range(steps):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        peak = lrs.index(max(lrs))
        assert max(lrs) == pytest.approx(2.0) and peak == round(0.2 * steps) - 1
        warm = round(0.2 * steps)
        assert lrs[0] == pytest.approx(2.0 / warm) and all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))
        assert lrs[-1] == pytest.approx(2.0 * (0.1 + 0.9 / (steps - warm)))  # one step short of final_lr·lr


def test_the_ema_horizon_and_start_scale_with_the_run():
    class Trainer:
        estimated_stepping_batches = 500

    ema = ScaledEMA(horizon=0.1, start=0.5)
    ema.on_train_start(Trainer(), None)
    assert ema.decay == pytest.approx(1 - 1 / 50) and not ema.should_update(step_idx=249) and ema.should_update(step_idx=250)
    assert ema._average(torch.tensor(1.0), torch.tensor(3.0), 1) == pytest.approx(1 + 2 / 50)
    with pytest.raises(InputError, match=r"scheduler.ema is a fraction in \[0, 1\], got 2"):
        ScheduleConfig(name="linear", ema=2)


def test_identity_init_passes_each_input_channel_through_its_own_filter():
    from leia.models.backbones import create_backbone

    torch.manual_seed(0)
    net = create_backbone("fastnet", 10, 3, (32, 32), widths=(8, 16, 16), identity_init=True)  # as model.options pass it
    for group in net.groups:
        for conv in (group[0], group[4]):
            k = min(conv.in_channels, conv.out_channels)  # (the stem's 24 channels meet 8 filters here)
            x = torch.randn(2, conv.in_channels, 6, 6)
            assert torch.allclose(conv(x)[:, :k], x[:, :k], atol=1e-6)
            assert conv.weight[k:].abs().sum() > 0 or k == conv.out_channels  # the other filters stay random
    x = torch.randn(2, 16, 6, 6)
    assert not torch.allclose(FastNet(10, 3, (8, 16, 16)).groups[2][0](x)[:, :16], x, atol=0.1)


def test_normalisation_parameters_can_learn_faster_with_the_same_decay_per_step():
    net = FastNet(10, train_bn_scale=False)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    optim = OptimConfig(lr=0.5, weight_decay=1e-3, norm_lr_scale=64)
    model = EncryptedClassifier(net, torch.nn.Identity(), 10, optim, ScheduleConfig(name="none"), 1)
    groups = model.param_groups()
    norm_params = {id(bn.bias) for bn in bns}
    assert {id(p) for p in groups[1]["params"]} == norm_params
    assert not norm_params & {id(p) for p in groups[0]["params"]}
    assert all(p.requires_grad for g in groups for p in g["params"])  # the frozen whitening and BN scales are out
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    lr_wd = [g["lr"] * g["weight_decay"] for g in opt.param_groups]
    assert opt.param_groups[1]["lr"] == pytest.approx(32) and lr_wd == pytest.approx([5e-4, 5e-4])
    plain = EncryptedClassifier(FastNet(10), torch.nn.Identity(), 10, OptimConfig(), ScheduleConfig(name="none"), 1)
    assert len(plain.param_groups()) == 1  # scale 1: one group, as before
    with pytest.raises(InputError, match="optimizer.norm_lr_scale must be > 0, got 0"):
        OptimConfig(norm_lr_scale=0)


@pytest.mark.parametrize("scheme", [pytest.param(s, marks=() if s in ("tanaka", "skk_per_image") else pytest.mark.slow)
                                    for s in SCHEMES])
def test_every_scheme_runs_through_fast_cifar10(scheme, tmp_path):
    root = cifar_folder(tmp_path / "cifar")
    done = train_cli(["experiment=fast_cifar10", f"scheme={scheme}", f"data.root={root}", *FAST], tmp_path / "runs",
                     timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics_file,) = (tmp_path / "runs").glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["complete"] and metrics["model"] == "fastnet" and metrics["test_images"] == 63


@pytest.mark.slow
def test_the_fast_recipe_learns_far_beyond_chance_on_digits(tmp_path):
    # Block stem (tanaka) on upscaled digits: this stayed at 10.6% while the stem was fitted on
    # unaugmented images, whose aligned 4x4 blocks are nearly flat (see DataModule.fit_sample).
    metrics, _ = run_train(["experiment=fast_cifar10", "data=digits", "data.placement=resident", "data.flip=0",
                            "data.batch_size=64", "scheme=tanaka", "trainer.max_epochs=4", "model.options.widths=[32,64,64]",
                            "logger=csv", "trainer.enable_progress_bar=false"], tmp_path)
    assert metrics["complete"] and metrics["test"]["acc1"] > 0.8 and metrics["test_images"] == 360  # chance: 0.1


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [["scheme=tanaka", "adapter=tanaka"], ["scheme=skk_per_image", "adapter=pixel"],
                                       ["scheme=etc", "data.placement=dataset"],
                                       ["scheme=tanaka", "data.alternate_flip=true", "data.cutout=8",
                                        "model.options.identity_init=true"]])
def test_the_fast_recipe_runs_with_adapters_and_the_other_placements(overrides, tmp_path):
    root = cifar_folder(tmp_path / "cifar")
    metrics, _ = run_train(["experiment=fast_cifar10", *overrides, f"data.root={root}", *FAST], tmp_path / "runs")
    adapter = dict(o.split("=", 1) for o in overrides).get("adapter", "none")
    assert metrics["complete"] and metrics["adapter"] == adapter and metrics["test_images"] == 63


def test_freed_host_memory_is_kept_for_reuse_unless_the_user_set_the_threshold(monkeypatch):
    import sys

    from leia.hostmem import keep_freed_memory

    if sys.platform.startswith("linux"):
        monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
        assert keep_freed_memory() is True
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert keep_freed_memory() is False


def test_the_clients_flip_views_are_averaged_at_test_time_and_leave_training_as_it_was(tmp_path):
    """data.client_tta=flip changes the test alone: the same training (validation, best epoch), its
    view 0 scores what the run without the option scores, and `test` averages both views."""
    short = ["experiment=fast_cifar10", "data=digits", "data.placement=resident", "scheme=skk_per_image",
             "trainer.max_epochs=1", "data.train_limit=300", "model.options.widths=[16,32,32]", "logger=csv",
             "trainer.enable_progress_bar=false"]
    one, _ = run_train([*short, "name=one"], tmp_path)
    tta, _ = run_train([*short, "name=tta", "data.client_tta=flip"], tmp_path)
    assert tta["client_tta"] == "flip" and "client_tta" not in one and "test_one_view" not in one
    assert tta["best_val_acc1"] == one["best_val_acc1"] and tta["test_one_view"] == one["test"]
    assert set(tta["test"]) == {"acc1", "acc5"} and tta["test_images"] == one["test_images"] == 360


def test_a_test_batch_of_views_scores_their_mean_posterior_and_view_0_alone():
    """What the client's views change in the test: `test` from the views' mean posterior, and
    `test_one_view` from view 0 alone (logits read straight from the inputs, so both are known)."""
    model = EncryptedClassifier(torch.nn.Flatten(), torch.nn.Identity(), 3, OptimConfig(), ScheduleConfig(name="none"), 1)
    view0 = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # predicts 0, 1
    view1 = torch.tensor([[0.0, 5.0, 0.0], [0.0, 0.0, 1.0]])  # predicts 1, 2; the mean: 1, 1
    model.on_test_epoch_start()
    model.test_step({"image": torch.stack([view0, view1], 1)[..., None, None], "label": torch.tensor([1, 1])}, 0)
    assert model.test_metrics[0].compute()["test/acc1"] == 1.0  # the mean posterior gets both right
    assert model.test_metrics[2].compute()["test_one_view/acc1"] == 0.5  # view 0 alone: one of two


def test_bench_client_tta_retests_a_finished_run_and_reproduces_its_one_view_score(tmp_path):
    import sys

    from tests.helpers import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    import client_tta

    metrics, run_dir = run_train(["experiment=fast_cifar10", "data=digits", "scheme=skk_per_image", "data.eval_plain=true",
                                  "trainer.max_epochs=1", "data.train_limit=300", "model.options.widths=[16,32,32]",
                                  "logger=csv", "trainer.enable_progress_bar=false"], tmp_path)
    again = client_tta.retest(run_dir, "flip")
    assert again["one_view"] == again["recorded"] == metrics["test"]["acc1"] and 0.0 <= again["acc1"] <= 1.0


def _jpeg_folder(root, quality: int, subsampling: int, fmt: str = "JPEG"):
    """A 2-class image folder of smooth random images, encoded as given."""
    from PIL import Image
    g = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(6):
                low = g.integers(0, 256, (8, 8, 3), dtype=np.uint8)
                im = Image.fromarray(low).resize((32, 32), Image.BILINEAR)
                im.save(root / split / c / f"{i}.{'jpg' if fmt == 'JPEG' else 'png'}", fmt,
                        **({"quality": quality, "subsampling": subsampling} if fmt == "JPEG" else {}))
    return root


def test_bench_jpeg_spectrum_checks_the_copys_encoding_and_finds_what_jpeg_removes(tmp_path, monkeypatch):
    import sys

    from tests.helpers import ROOT
    sys.path.insert(0, str(ROOT / "bench"))
    import jpeg_spectrum

    out = tmp_path / "B.md"
    monkeypatch.setattr(sys, "argv", ["jpeg_spectrum.py", "--cifar", str(_jpeg_folder(tmp_path / "q75", 75, 2)),
                                      "--images", "10", "--out", str(out)])
    jpeg_spectrum.main()
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| ") and line[2].isdigit()]
    ratio = np.array([float(r[6]) for r in rows])
    assert len(rows) == 12 and (ratio[6:] < 0.5).all() and (ratio[:3] > 0.9).all()  # JPEG removes the finest directions
    for folder in (_jpeg_folder(tmp_path / "q95", 95, 0), _jpeg_folder(tmp_path / "png", 0, 0, "PNG")):
        monkeypatch.setattr(sys, "argv", ["jpeg_spectrum.py", "--cifar", str(folder)])
        with pytest.raises(SystemExit, match="not PIL JPEG quality 75"):
            jpeg_spectrum.main()


def test_patch_spectrum_is_the_covariance_of_the_flattened_patches():
    from leia.models.fastnet import patch_spectrum
    x = torch.randn(4, 3, 6, 6)
    mean, eigval, eigvec = patch_spectrum(x, 2, 2)
    patches = torch.stack([x[b, :, i:i + 2, j:j + 2].reshape(-1) for b in range(4) for i in (0, 2, 4) for j in (0, 2, 4)])
    assert torch.allclose(mean, patches.mean(0), atol=1e-6)
    cov = torch.cov(patches.T.double())
    assert torch.allclose(eigvec @ torch.diag(eigval) @ eigvec.T, cov, atol=1e-6)
