"""shared_key: the key of every shared-key scheme from ciphertexts alone, on real CIFAR-10 images
(the committed 250-image fixture: 20 victims and 5 held-out images per class), with thresholds a
broken solver misses; the refusals; that held-out images never reach the attack; end to end."""

import json

import pytest
import torch

from leia import attacks, ciphers
from leia.attacks import pooled
from leia.attacks.assembly import COMPOSE, D4, INVERSE, TreeAssembly, move
from leia.attacks.base import Access, NotApplicable
from leia.attacks.blocks import dihedral
from leia.attacks.metrics import ssim
from leia.errors import InputError
from tests.attacks.helpers import cifar, cifar_folder
from tests.helpers import ATTACK_FAST, run_attack


def split():
    images, labels, _ = cifar()
    per_class = torch.arange(len(labels)) % 25  # the fixture is class by class, 25 each
    return images[per_class < 20], images[per_class >= 20]


def recover(scheme: str, seed: int = 0, attack_params: dict | None = None, **params):
    victims, holdout = split()
    victim = ciphers.create(scheme, seed=seed, **params)
    attack = attacks.create("shared_key", **(attack_params or {}))
    attack.prepare(Access(scheme=scheme, params=victim.config(), image_size=(32, 32)))
    for s in range(0, len(victims), 64):
        attack.observe(victim.encrypt(victims[s : s + 64]))
    estimate = attack.recovered_cipher()
    decrypted = estimate.decrypt(victim.encrypt(holdout))
    return attack, victim, estimate, decrypted, holdout


@pytest.mark.parametrize("seed", [0, 1])
def test_etc_key_is_recovered_exactly_up_to_the_mirror(seed):
    attack, victim, estimate, decrypted, holdout = recover("etc", seed, block_size=4)
    key = attack.key_metrics(victim)
    assert key["key_recovered_fraction_up_to_global"] == 1.0
    assert key["best_global_symmetry"] in ("identity", "mirror")  # colour and negative resolved by the priors
    assert torch.equal(attack.align(decrypted, victim), holdout)  # held-out images decrypt exactly
    assert isinstance(estimate, type(victim)) and estimate.config() == victim.config()


def test_same_key_skk_is_recovered_exactly():
    attack, victim, _, decrypted, holdout = recover("skk", 0)
    key = attack.key_metrics(victim)
    assert key["key_recovered_fraction_up_to_global"] >= 0.99
    assert float(ssim(attack.align(decrypted, victim), holdout).mean()) > 0.99


def test_scramblemix_views_are_sorted_by_key_and_every_pool_key_recovered(tmp_path):
    """200 views share ScrambleMix's pool of 8 skk keys (25 a key): every view that is one scramble
    lands in its key's group, every pool member is some group's key, and held-out views decrypt."""
    victims, holdout = split()
    victim = ciphers.create("scramblemix", seed=0)
    ids, held_ids = [f"victim/{i}" for i in range(len(victims))], [f"holdout/{i}" for i in range(len(holdout))]
    attack = attacks.create("shared_key", save_key=str(tmp_path / "pool.json"))
    attack.prepare(Access(scheme="scramblemix", params=victim.config(), image_size=(32, 32)))
    y = victim.encrypt(victims, ids=ids)
    attack.observe(y)
    outcome = attack.reconstruct(y)
    pair, weight = (a[:, 0] for a in victim.view_parameters(ids, [0], 32, 32))
    one = torch.from_numpy((weight == 0) | (weight == 65536))  # views that are one scramble (no blend)
    member = torch.from_numpy(2 * pair + (weight == 65536))
    for group in outcome.solution.unique():
        assert member[one & (outcome.solution == group)].unique().numel() == 1  # one key per group
    key = attack.key_metrics(victim)
    assert key["pool_members_found"] == 8 and key["groups"] == 8
    assert key["key_recovered_fraction_up_to_global"] >= 0.8  # a wrong key: about 1/48 of the pixels
    assert float(ssim(attack.align(outcome.images, victim, outcome.solution), victims)[one].mean()) > 0.65
    y_held = victim.encrypt(holdout, ids=held_ids)
    held = attack.reconstruct(y_held)
    assert torch.equal(attack.recovered_cipher().decrypt(y_held), held.images)  # the pool decrypts as the attack does
    assert float(ssim(attack.align(held.images, victim, held.solution), holdout).mean()) > 0.6
    assert float(ssim(victim.encrypt(holdout, ids=held_ids), holdout).mean()) < 0.1
    # the pool's keys are written as skk key files, one a group
    assert {p.name for p in tmp_path.iterdir()} == {f"pool.member{k}.json" for k in range(8)}
    assert ciphers.create("skk", key_file=str(tmp_path / "pool.member0.json")).name == "skk"


@pytest.mark.parametrize("np_mask", [False, True])
def test_vit_block_patches_and_pixel_shuffle_are_recovered(np_mask):
    attack, victim, _, decrypted, holdout = recover("vit_block", 0, block_size=4, np=np_mask)
    key = attack.key_metrics(victim)
    assert key["key_recovered_fraction_up_to_global"] >= 0.95
    assert float(ssim(attack.align(decrypted, victim), holdout).mean()) >= 0.9


@pytest.mark.parametrize("flip", ["derived", "independent"])
def test_tanaka_high_nibbles_are_placed_and_signed(flip):
    attack, victim, _, decrypted, holdout = recover("tanaka", 0, block_size=4, flip=flip)
    key = attack.key_metrics(victim)
    assert key["high_nibbles_up_to_global"] == 1.0
    high = lambda x: x & 0xF0  # noqa: E731
    assert torch.equal(high(attack.align(decrypted, victim)), high(holdout))
    assert float(ssim(attack.align(decrypted, victim), holdout).mean()) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("flip, least", [("derived", 0.95), ("independent", 0.85)])
def test_ele_block_keys_and_placement_are_recovered(flip, least):
    """ele: a key per block position, found from 200 ciphertexts per position; derived flips also
    settle the whole-image mirror (only the right assembly's P predicts the measured signs)."""
    attack, victim, _, decrypted, holdout = recover("ele", 0, block_size=4, flip=flip)
    key = attack.key_metrics(victim)
    assert key["high_nibbles_up_to_global"] >= 0.7
    if flip == "derived":
        assert key["high_nibbles_up_to_global"] >= 0.95 and key["best_global_symmetry"] == "identity"
    assert float(ssim(attack.align(decrypted, victim), holdout).mean()) >= least


@pytest.mark.parametrize("seed", [0, 1])
def test_grayscale_etc_key_is_recovered_across_the_y_cb_cr_planes(seed):
    """Grayscale-based etc: blocks move between the Y, Cb and Cr planes. The whole key comes back up
    to the mirror (which plane is Cb and the chroma signs from the RGB cube), held-out planes
    decrypt exactly, and another seed's key scores near nothing."""
    attack, victim, estimate, decrypted, holdout = recover("etc", seed, block_size=4, grayscale=True)
    key = attack.key_metrics(victim)
    assert key["key_recovered_fraction_up_to_global"] == 1.0
    assert key["best_global_symmetry"] in ("identity", "mirror")
    layout = lambda planes: torch.cat(planes.unbind(1), dim=-1)[:, None]  # noqa: E731 (Y | Cb | Cr)
    y = victim.encrypt(holdout)
    recovered = attack.best_symmetry(victim).inverse().apply(layout(estimate.decrypt_planes(y)))
    assert torch.equal(recovered, layout(victim.decrypt_planes(y)))
    assert float(ssim(attack.align(decrypted, victim), holdout).mean()) > 0.99
    other = ciphers.create("etc", seed=7, block_size=4, grayscale=True)
    assert attack.key_metrics(other)["key_recovered_fraction_up_to_global"] < 0.2


@pytest.mark.slow
def test_tanaka_low_nibbles_come_from_the_neighbour_prediction():
    attack, victim, *_ = recover("tanaka", 0, block_size=4)
    placed = attack.key_metrics(victim)
    attack, victim, *_ = recover("tanaka", 0, {"low_nibbles": "skip"}, block_size=4)
    skipped = attack.key_metrics(victim)
    assert skipped["high_nibbles_up_to_global"] == 1.0 and skipped["low_nibbles_up_to_global"] < 0.2
    assert placed["low_nibbles_up_to_global"] > 0.9


def test_a_scrambled_estimate_scores_low():
    """The scoring is not vacuous: a key from another seed agrees on almost nothing."""
    attack, victim, *_ = recover("etc", 0, block_size=4)
    other = ciphers.create("etc", seed=7, block_size=4)
    assert attack.key_metrics(other)["key_recovered_fraction_up_to_global"] < 0.2


def test_per_image_skk_is_refused_with_the_reason():
    with pytest.raises(NotApplicable, match="its own key"):
        attacks.create("shared_key").check("skk", {"key_mode": "per_image", "color_shuffle": True,
                                                   "per_image_keys": "derived"})
    with pytest.raises(NotApplicable, match="applies to"):
        attacks.create("shared_key").check("plain", {})


def test_etc_that_destroys_channels_is_refused():
    with pytest.raises(NotApplicable, match="destroys channels"):
        attacks.create("shared_key").check("etc", {"block_size": 4, "grayscale": False, "color_shuffle": "legacy_inplace"})


@pytest.mark.parametrize("attack", ["shared_key", "skk_cpa", "skk_greedy"])
def test_skk_that_duplicates_channels_is_refused_by_the_attacks_that_assume_a_permutation(attack):
    params = {"key_mode": "same", "color_shuffle": "legacy_inplace", "per_image_keys": "derived"}
    with pytest.raises(NotApplicable, match="duplicates channels"):
        attacks.create(attack).check("skk", params)
    attacks.create(attack).check("skk", {**params, "color_shuffle": True})  # the correct shuffle is attacked


def test_held_out_images_cannot_reach_the_estimate():
    """The estimate is frozen once made: later ciphertexts (held-out ones, say) are refused, and the
    key does not change. The attack has no hint and its Access carries no held-out images."""
    attack, victim, estimate, _, holdout = recover("etc", 0, block_size=4)
    before = estimate.fingerprint
    with pytest.raises(InputError, match="already estimated"):
        attack.observe(victim.encrypt(holdout))
    assert attack.recovered_cipher().fingerprint == before
    assert attack.hint(holdout) is None
    assert not any("holdout" in f for f in Access.__dataclass_fields__)


@pytest.mark.slow
def test_the_run_never_shows_held_out_images_to_the_attack(tmp_path, monkeypatch):
    """Through attack.py's own run: the estimate is made from the victims' ciphertexts alone; held-out
    ones are only decrypted by it once it is frozen (as the evaluator decrypts them with the key)."""
    from leia.attacks.shared_key import SharedKey

    observed, decrypted = [], []
    original_observe, original_reconstruct = SharedKey.observe, SharedKey.reconstruct
    monkeypatch.setattr(SharedKey, "observe", lambda self, y: (observed.append(y.clone()), original_observe(self, y))[1])
    monkeypatch.setattr(SharedKey, "reconstruct", lambda self, y, hint=None: (
        decrypted.append((y.clone(), self._cipher is not None)), original_reconstruct(self, y, hint))[1])
    folder = cifar_folder(tmp_path / "data", test_only=True)
    metrics, run_dir = run_attack(["scheme=etc", "attack=shared_key", "data=imagefolder", f"data.root={folder}",
                                   "victims.limit=30", "attack.holdout=20", *ATTACK_FAST], tmp_path / "runs")
    assert metrics["holdout_images"] == 20 and "holdout_ssim_up_to_global" in metrics["metrics"]
    from leia.attacking import images_after  # the same held-out images, encrypted as the evaluator does
    from leia.data.sources import load_split

    test = load_split("imagefolder", "test", root=str(folder))
    held = images_after(test, 30, 20).images
    victim = ciphers.create("etc", seed=0, block_size=4)
    held_cipher = victim.encrypt(held)

    def holds_held_out(y):
        return bool((y[:, None] == held_cipher[None]).flatten(2).all(2).any())

    seen = torch.cat(observed)
    assert len(seen) == metrics["victim_images"] and not holds_held_out(seen)  # the estimate's only input
    assert sum(len(y) for y, _ in decrypted) == metrics["victim_images"] + 20  # the victims, then the held-out
    assert all(frozen for y, frozen in decrypted if holds_held_out(y))  # held-out: only after the estimate froze
    assert sum(holds_held_out(y) for y, _ in decrypted) == 1


def test_held_out_images_follow_the_victims_class_by_class():
    from leia.attacking import images_after
    from leia.data.sources import Images

    images, labels, classes = cifar()
    test = Images(images, labels, classes, "test")
    victims = test.subset(50)  # 5 per class
    held = images_after(test, 50, 15)
    assert len(held) == 15 and torch.bincount(held.labels, minlength=10).max() == 2  # balanced round robin
    assert not (held.images[:, None] == victims.images[None]).flatten(2).all(2).any()
    with pytest.raises(InputError, match="beyond the victims"):
        images_after(test, None, 10)
    with pytest.raises(InputError, match="only 200 test images follow"):
        images_after(test, 50, 201)


def test_save_key_writes_the_recovered_key_only_when_asked(tmp_path):
    folder = cifar_folder(tmp_path / "data", test_only=True)
    common = ["scheme=etc", "attack=shared_key", "data=imagefolder", f"data.root={folder}", "victims.limit=30",
              *ATTACK_FAST]
    _, run_dir = run_attack(common, tmp_path / "runs")
    assert not [p for p in run_dir.rglob("*") if p.suffix == ".json" and "leia-key" in p.read_text()]
    key_path = tmp_path / "keys" / "recovered.json"
    metrics, _ = run_attack([*common, f"attack.save_key={key_path}", "name=with_key"], tmp_path / "runs")
    loaded = ciphers.create("etc", key_file=str(key_path))
    assert json.loads(key_path.read_text())["format"] == "leia-key" and loaded.name == "etc"


# ---------------------------------------------------------------- the pieces
def test_dihedral_tables_agree_with_the_block_transforms():
    grid = torch.arange(25).reshape(5, 5, 1)
    for g in range(D4):
        assert int(COMPOSE[g, INVERSE[g]]) == 0
        for h in range(D4):
            assert torch.equal(dihedral(dihedral(grid, h), g), dihedral(grid, int(COMPOSE[g, h])))
        moved = dihedral(grid, g)
        for dr, dc in ((0, 1), (1, 0), (1, 2)):  # cell (2+dr, 2+dc) lands at centre + move(g, dr, dc)
            r, c = move(g, dr, dc)
            assert int(moved[2 + r, 2 + c, 0]) == int(grid[2 + dr, 2 + dc, 0])


def test_tree_assembly_reassembles_pooled_pieces_in_a_non_square_frame():
    """The fixture's images cut to 24×32 (a 6×8 frame of 4×4 pieces), pieces shuffled and turned the
    same way in every image: the assembly puts them back, up to a transform that keeps the frame."""
    from leia.attacks.blocks import from_blocks, to_blocks

    images, _, _ = cifar()
    images = images[:, :, :24]
    rows, cols, p = 6, 8, 48
    g = torch.Generator().manual_seed(0)
    where = torch.randperm(p, generator=g)  # piece i comes from slot where[i]
    orient = torch.randint(0, D4, (p,), generator=g)
    tiles = to_blocks(images, 4)  # [N, P, 4, 4, 3]
    pieces = torch.stack([dihedral(tiles[:, where[i]], int(INVERSE[orient[i]])) for i in range(p)], 1)
    lr, tb = pooled.compatibility(pieces, D4)
    placement = TreeAssembly(lr, tb, p, D4, rows, cols).solve()
    assembled = torch.empty_like(pieces)
    for i in range(p):
        assembled[:, placement.slot[i]] = dihedral(pieces[:, i], int(placement.orientation[i]))
    picture = from_blocks(assembled, 24, 32)
    as_hwc = lambda x: x.permute(0, 2, 3, 1)  # noqa: E731
    assert any(torch.equal(dihedral(as_hwc(picture), t), as_hwc(images)) for t in (0, 2, 4, 6))


def test_leading_signs_and_colour_sync_find_relative_tones():
    images, _, _ = cifar()
    means = images.double().reshape(250, 3, 8, 4, 8, 4).mean((3, 5)).permute(0, 2, 3, 1).reshape(250, 64, 3)
    g = torch.Generator().manual_seed(1)
    negated = torch.rand(64, generator=g) < 0.5
    codes = torch.randint(0, 6, (64,), generator=g)
    perms = torch.from_numpy(ciphers.layout.COLOR_PERMS)[codes]  # output channel k takes input perms[u, k]
    shuffled = torch.gather(means, 2, perms[None].expand(250, -1, -1))
    shuffled = torch.where(negated[None, :, None], 255 - shuffled, shuffled)
    found = pooled.leading_signs(shuffled.mean(-1))
    assert torch.equal(found, negated) or torch.equal(found, ~negated)
    fixed = torch.where(found[None, :, None], 255 - shuffled, shuffled)
    canonical = pooled.undo_colour(fixed, pooled.colour_sync(fixed))
    # one common channel order for every unit: the same permutation of the true channels everywhere
    plain = torch.where((found != negated)[None, :, None], 255 - means, means)
    orders = {tuple(int(torch.argmin((canonical[:, u, k, None] - plain[:, u]).abs().sum(0))) for k in range(3))
              for u in range(64)}
    assert len(orders) == 1
