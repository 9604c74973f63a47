"""Training on ScrambleMix views: D views per image in a batch, the self-teaching KL term, test-time
averaging over T views, and train.py end to end."""


import pytest
import torch
from torch import nn

from leia import ciphers
from leia.data.datamodule import DataConfig, EncryptedDataModule
from leia.errors import InputError
from leia.models.classifier import EncryptedClassifier, OptimConfig, ScheduleConfig, view_consistency
from tests.attacks.helpers import cifar_folder
from tests.helpers import FAST, run_train


def mix(**params):
    return ciphers.create("scramblemix", seed=3, **params)


@pytest.mark.parametrize("placement", ["dataset", "resident"])
def test_a_training_batch_holds_d_views_of_each_image_fresh_every_epoch(placement):
    cipher = mix(views=3, test_pairs=2)
    dm = EncryptedDataModule(DataConfig(name="digits", batch_size=16, placement=placement, train_limit=40, seed=2,
                                        pad=2), cipher)
    dm.setup()
    loader = dm.train_dataloader()
    batches = {}
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        batches[epoch] = next(iter(loader))
    batch = batches[1]
    assert batch["image"].shape == (16, 3, 3, 32, 32) and batch["image"].dtype == torch.uint8
    # the views are the cipher's views e·D .. e·D+D-1 of the augmented images, by id
    plan_index, plan_params = loader.sampler.plan()
    plain = dm.train_data.images[plan_index[:16]]
    from leia.data.loading import Augment
    augmented = Augment(2, 0.0).apply_batch(plain, plan_params[:16])
    assert torch.equal(batch["image"], cipher.encrypt_views(augmented, list(batch["id"]), [3, 4, 5]))
    assert not torch.equal(batches[0]["image"], batch["image"])
    test = next(iter(dm.test_dataloader()[0]))
    assert test["image"].shape[1] == 2  # T test views
    normalised = dm.on_after_batch_transfer(dict(batch), 0)["image"]
    assert normalised.shape == (16, 3, 3, 32, 32) and normalised.dtype == torch.float32


def test_the_device_placement_is_refused_for_views():
    dm = EncryptedDataModule(DataConfig(name="digits", placement="device", train_limit=40), mix())
    dm.setup()
    with pytest.raises(InputError, match="encrypts each image into views.*resident or dataset"):
        dm.train_dataloader()


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(x.flatten(1))


def classifier(kl_weight):
    torch.manual_seed(0)
    return EncryptedClassifier(Tiny(), nn.Identity(), 5, OptimConfig(), ScheduleConfig(name="none"), 1, kl_weight=kl_weight)


def test_the_kl_term_is_wired_and_weighted():
    x = torch.randn(6, 4, 3, 8, 8)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    batch = {"image": x, "label": labels}
    losses = {}
    for weight in (0.0, 1.0, 2.0):
        model = classifier(weight)
        model.log = lambda *a, **k: None
        losses[weight] = model.training_step(batch, 0)
    kl = view_consistency(classifier(0.0).view_logits(x))
    assert kl > 0 and losses[1.0] != losses[0.0]
    assert torch.allclose(losses[1.0] - losses[0.0], kl) and torch.allclose(losses[2.0] - losses[0.0], 2 * kl)
    # cross-entropy covers every view: the loss at weight 0 is the mean over the 24 views
    model = classifier(0.0)
    assert torch.allclose(losses[0.0], nn.functional.cross_entropy(model(x.flatten(0, 1)), labels.repeat_interleave(4)))
    same = x[:, :1].expand(-1, 4, -1, -1, -1)  # identical views agree with their mean: no KL
    assert view_consistency(model.view_logits(same)).abs() < 1e-6


def test_confident_views_give_a_finite_kl_and_a_finite_average():
    # a class whose posterior underflows in every view: log of the mean posterior must not be -inf
    logits = torch.tensor([[[0.0, 120.0, 0.0], [0.0, 119.0, 0.0]]], requires_grad=True)
    kl = view_consistency(logits)
    kl.backward()
    assert torch.isfinite(kl) and torch.isfinite(logits.grad).all()
    from leia.models.classifier import average_views
    assert torch.isfinite(average_views(logits)).all()


def test_the_teacher_gets_no_gradient_and_test_views_average_posteriors():
    logits = torch.randn(3, 4, 5, requires_grad=True)
    view_consistency(logits).backward()
    p = logits.detach().softmax(-1)
    mean = p.mean(1, keepdim=True)
    # d/dz of sum_k p_k (log p_k - log m_k) with m fixed: p * ((log p - log m) - KL), averaged over B·D
    kl = (p * (p.log() - mean.log())).sum(-1, keepdim=True)
    assert torch.allclose(logits.grad, p * ((p.log() - mean.log()) - kl) / 12, atol=1e-6)
    model = classifier(0.0)
    x = torch.randn(2, 3, 3, 8, 8)
    expected = model(x.flatten(0, 1)).unflatten(0, (2, 3)).softmax(-1).mean(1).log()
    assert torch.allclose(model.eval_logits(x), expected) and torch.equal(model.eval_logits(x[:, 0]), model(x[:, 0]))


def test_scramblemix_trains_end_to_end_through_train_py(tmp_path):
    metrics, run_dir = run_train(["scheme=scramblemix", "scheme.views=2", "scheme.test_pairs=2", "data=digits",
                                  *FAST], tmp_path)
    assert metrics["complete"] and metrics["scheme"] == "scramblemix"
    assert set(metrics["test_one_view"]) == set(metrics["test"]) == {"acc1", "acc5"}  # T = 2: view 0 alone as well


@pytest.mark.slow
def test_scramblemix_runs_through_fast_cifar10(tmp_path):
    root = cifar_folder(tmp_path / "cifar")
    metrics, _ = run_train(["experiment=fast_cifar10", "scheme=scramblemix", f"data.root={root}", *FAST], tmp_path / "runs")
    assert metrics["complete"] and metrics["model"] == "fastnet" and metrics["test_images"] == 63
