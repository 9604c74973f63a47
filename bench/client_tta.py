"""What the client's test-time flip (`data.client_tta=flip`) adds to finished training runs, without
training them again: each run's final weights (the EMA's, from checkpoints/last.ckpt) are tested
once more, on the same test images, with each image's mirror image encrypted beside it by the
client and the two posteriors averaged. The one-view score of that same pass must equal the run's
own one-view test top-1 (metrics.json: test.acc1, or test_one_view.acc1 for a run whose test
already averaged views), which checks that the weights, data and cipher are the run's; a run where
it does not is reported as such, not tabulated. For a multi-view scheme (scramblemix with T test
views) the flip column averages its T views of the image and its T views of the mirror image.

    python bench/client_tta.py RUN_DIR [RUN_DIR ...] [--out docs/BENCHMARKS.md]

Only the test runs here (10,000 images × 2 views for CIFAR-10); the training runs are the ones in
docs/BENCHMARKS.md, made by the commands written there.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

sys.path.insert(0, str(Path(__file__).parent))
from ciphers import ROOT, machine, publish  # noqa: E402

sys.path.insert(0, str(ROOT / "src"))
from leia import runs  # noqa: E402
from leia.data.loading import CLIENT_TTA  # noqa: E402
from leia.training import build_data, build_model  # noqa: E402

MARKS = ("<!-- bench/client_tta.py:start -->", "<!-- bench/client_tta.py:end -->")


def retest(run_dir: Path, tta: str) -> dict:
    """Test a finished run's final weights with the client's views `tta`: {acc1, one_view, recorded, seconds}."""
    done = json.loads((run_dir / runs.METRICS).read_text())
    if not done.get("complete") or done.get("task") != "train":
        raise SystemExit(f"{run_dir}: not a finished training run")
    cfg = OmegaConf.create(json.loads((run_dir / runs.RECORD).read_text())["config"])
    cfg.data.client_tta, cfg.name = tta, run_dir.name
    cfg.data.eval_plain = False  # the encrypted test images alone
    cipher = runs.build_cipher(cfg)
    if cipher.fingerprint_for(tuple(done["image_size"])) != done["key_fingerprint"]:
        raise SystemExit(f"{run_dir}: its config does not rebuild the run's key (a key from a file that moved?)")
    dm = build_data(cfg, cipher)
    dm.setup()
    model = build_model(cfg, dm, cipher)
    checkpoint = torch.load(run_dir / runs.CHECKPOINT, map_location="cpu", weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])  # the EMA's weights where the run kept one (Lightning saves them here)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    start = time.time()
    (result,) = trainer.test(model, datamodule=dm, verbose=False)
    recorded = done.get("test_one_view", done["test"])["acc1"]  # view 0 alone
    return {"acc1": result["test/acc1"], "one_view": result["test_one_view/acc1"], "recorded": recorded,
            "seconds": time.time() - start, "metrics": done}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="finished training runs (directories with metrics.json)")
    p.add_argument("--tta", default="flip", choices=[k for k in CLIENT_TTA if CLIENT_TTA[k]],
                   help="the client's views (data.client_tta)")
    p.add_argument("--out", type=Path, help="Markdown file to write this benchmark's section into")
    args = p.parse_args()
    rows, mismatched = [], []
    for run_dir in args.runs:
        r = retest(run_dir.resolve(), args.tta)
        m = r["metrics"]
        print(f"{run_dir}: one view {r['one_view']:.4f} (recorded {r['recorded']:.4f}), with the client's "
              f"{args.tta} {r['acc1']:.4f}, {r['seconds']:.1f} s", flush=True)
        if abs(r["one_view"] - r["recorded"]) > 1e-9:
            mismatched.append(f"{run_dir}: one view {r['one_view']:.4f}, recorded {r['recorded']:.4f}")
            continue
        rows.append(f"| {run_dir.name} | {m['scheme']} | {m['adapter']} | {m['epochs']} | {100 * r['one_view']:.2f} | "
                    f"{100 * r['acc1']:.2f} | {100 * (r['acc1'] - r['one_view']):+.2f} | {r['seconds']:.1f} |")
    if mismatched:
        print("not tabulated (the one-view score is not the run's own):\n" + "\n".join(mismatched))
    lines = [
        MARKS[0],
        f"## The client's test-time flip (`data.client_tta={args.tta}`) on finished runs",
        "",
        f"Command: `python bench/client_tta.py {' '.join(str(d) for d in args.runs)} --tta {args.tta}`.",
        f"Machine: {machine()}. Each run's final weights (EMA) are tested again on all its test images, the",
        "client sending each image's ciphertext and that of its mirror image (same key), the two posteriors",
        "averaged. One view = the same pass scored on the image's own ciphertext alone; it equals each run's",
        "recorded one-view test top-1 (checked; a run where it does not is left out). The server alone cannot do",
        "this: it cannot flip a ciphertext. Test s = the test pass with both views. Each run was trained",
        "by the command written beside its own table.",
        "",
        "| run | scheme | adaptation | epochs | one view % | with the client's flip % | gain | test s |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        *rows,
        MARKS[1],
    ]
    publish(lines, args.out, MARKS)
    if mismatched:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
