"""Turn sweep directories into one report: `python -m leia.report runs/sweeps/<a> [runs/sweeps/<b> ...]`.

Reads every metrics.json under the given directories (train and attack jobs alike, any status) and
writes, into `--out` (default: <first dir>/report):
- report.md: the scheme x attack table (attack SSIM by default), the scheme x model table (test
  top-1 accuracy), each cell mean ± std over the keys and seeds that ran (n in brackets; `n/a`: the
  attack does not apply; `failed`: every run of the cell failed, errors listed below), and the
  privacy-utility table;
- with `--paper <name>`, the training table beside a published one (leia.published), with the gap
  to plain (plain − scheme) on both sides;
- runs.csv (one row per job), attacks.csv and training.csv (one row per cell);
- privacy_utility.png: per scheme, the best model's accuracy against the strongest attack's SSIM
  (up and left is better: useful and private), when both kinds of job are there on ONE data set
  (results on different data sets are never joined); attack cells use the metric up to the global
  symmetry where the attack reports it;
- grids/<scheme>.png: the attacks' image grids on that scheme (plain | encrypted | reconstruction).
`--wandb` also logs the tables and figures as a W&B run of job type `report` in the sweep's group.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import published
from .errors import InputError
from .records import STATUSES

METRICS = "metrics.json"
ATTACK_METRIC, TRAIN_METRIC = "ssim", "acc1"


@dataclass
class Cell:
    """One grid cell: the runs of one (data, scheme, attack or model) over keys and seeds."""

    values: list[float] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    grid: Path | None = None  # an attack's grid.png (the first complete run's)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else (0.0 if self.values else None)

    def text(self, digits: int, scale: float = 1.0) -> str:
        failed, stopped = self.statuses.count("failed"), self.statuses.count("interrupted")
        if not self.values:
            return "failed" if failed else "interrupted" if stopped else "n/a"
        out = f"{scale * self.mean:.{digits}f} ± {scale * self.std:.{digits}f} ({self.n})"
        return out + (f", {failed} failed" if failed else "") + (f", {stopped} interrupted" if stopped else "")


ONE_VIEW = "/one_view"  # suffix of the row of a test-time-averaging run scored on view 0 alone


def load_runs(dirs: list[Path]) -> list[dict]:
    """Every job record under `dirs` (metrics.json, with its directory as `dir`)."""
    runs = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise InputError(f"no sweep directory at {d}; expected a directory holding jobs' metrics.json "
                             f"(e.g. runs/sweeps/<sweep>)")
        for path in sorted(d.rglob(METRICS)):
            try:
                record = json.loads(path.read_text())
            except ValueError as e:
                raise InputError(f"{path} is not readable JSON ({e}): move it away, or re-run its job") from None
            if "task" in record:
                runs.append({**record, "dir": path.parent,
                             "status": record.get("status", "complete" if record.get("complete") else "failed")})
    if not runs:
        raise InputError(f"no metrics.json under {', '.join(map(str, dirs))}: have the sweep's jobs run?")
    return runs


def value(run: dict, metric: str) -> float | None:
    """A run's number. For attacks, the metric up to the global symmetry when the attack reports it
    (a mirrored or colour-swapped reconstruction reveals as much as the image itself)."""
    if run["status"] != "complete":
        return None
    section = (run.get("metrics") if run["task"] == "attack" else run.get("test")) or {}
    v = section.get(f"{metric}_up_to_global", section.get(metric)) if run["task"] == "attack" else section.get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def column(run: dict) -> str:
    if run["task"] == "attack":
        return f"{run['attack']}[{run['setting']}]" if run.get("setting") else run["attack"]
    model = run["model"] if run.get("adapter") in (None, "none") else f"{run['model']}+{run['adapter']}"
    # A test averaged over the client's views is always labelled (and so never averaged with one view's)
    setting = [s for s in (run.get("setting"), run.get("client_tta") and f"client_tta={run['client_tta']}") if s]
    return f"{model} [{', '.join(setting)}]" if setting else model


def attack_settings(run: dict) -> dict[str, str]:
    """What an attack run computed, beyond its scheme and attack names: the attack's parameters, the
    scheme's (prefixed `scheme.`), the image size and how many images each side had."""
    params = {k: v for k, v in (run.get("attack_params") or {}).items()}
    params.update({f"scheme.{k}": v for k, v in (run.get("scheme_params") or {}).items()})
    if run.get("image_size"):
        params["size"] = "x".join(map(str, run["image_size"]))
    for field_, name in (("victim_images", "victims"), ("attacker_images", "attacker_images")):
        if run.get(field_) is not None:
            params[name] = run[field_]
    return {k: json.dumps(v, sort_keys=True).strip('"') for k, v in params.items()}


def training_settings(run: dict) -> dict[str, str]:
    """A training run's budget (what its metrics.json records of it): epochs and images."""
    return {k: str(run[k]) for k in ("epochs", "train_images", "test_images") if run.get(k) is not None}


def label_settings(runs: list[dict]) -> None:
    """Give each run its `setting`: for an attack, the parameters in which it differs from the other
    runs of the same data set, scheme and attack (e.g. `mode=bytes`); for training, the budget in
    which it differs from the other training runs on its data set (e.g. `epochs=10`); empty where
    they all agree. Runs of different settings are different cells: averaging a CPA's nibble and
    byte modes, or 1 epoch with 10, would describe neither. Keys and seeds are what a cell averages
    over, so they are never part of a setting."""
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for run in runs:
        if run["task"] == "attack":
            groups.setdefault((run["data"], run["scheme_config"], run["attack"]), []).append((run, attack_settings(run)))
        else:  # one budget for every scheme of a data set, so that a scheme's row meets plain's in one column
            groups.setdefault((run["data"], run["task"]), []).append((run, training_settings(run)))
    for members in groups.values():
        known = [p for _, p in members if p]  # jobs that failed before building their attack record none
        shared = set.intersection(*(set(p) for p in known)) if known else set()  # an interrupted run records less
        varying = sorted(k for k in shared if len({p[k] for p in known}) > 1)
        for run, params in members:
            run["setting"] = ", ".join(f"{k}={params[k]}" for k in varying) if params else ""


def grids(runs: list[dict], task: str, metric: str) -> dict[tuple[str, str], dict[str, Cell]]:
    """{(data, scheme): {column: Cell}} for one task (attack, or train/convert)."""
    table: dict[tuple[str, str], dict[str, Cell]] = {}
    rows = []
    for run in runs:
        rows.append(run)
        if run["task"] != "attack" and run.get("test_one_view"):  # test-time averaging: also its one-view score
            rows.append({**run, "test": run["test_one_view"], "scheme_config": f"{run['scheme_config']}{ONE_VIEW}"})
    for run in rows:
        if (run["task"] == "attack") != (task == "attack"):
            continue
        cell = table.setdefault((run["data"], run["scheme_config"]), {}).setdefault(column(run), Cell())
        cell.statuses.append(run["status"])
        v = value(run, metric)
        if v is not None:
            cell.values.append(v)
            if cell.grid is None and (run["dir"] / "grid.png").is_file():
                cell.grid = run["dir"] / "grid.png"
        elif run["status"] == "failed":
            cell.errors.append(f"{run['name']}: {run.get('error', 'no error recorded')} ({run['dir']})")
    return table


def markdown_table(table: dict, row_title: str, digits: int, scale: float = 1.0) -> str:
    columns = sorted({c for cells in table.values() for c in cells})
    several_data = len({data for data, _ in table}) > 1
    lines = [f"| {row_title} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for (data, scheme), cells in sorted(table.items()):
        label = f"{scheme} ({data})" if several_data else scheme
        lines.append(f"| {label} | " + " | ".join(cells[c].text(digits, scale) if c in cells else "" for c in columns) + " |")
    return "\n".join(lines)


def beside_paper(training: dict, published) -> str:
    """The training table beside a paper's (leia.published): per scheme and adaptation, leia's
    accuracy and gap to plain (plain − scheme, same model and adaptation), then the paper's."""
    lines = [f"Beside {published.source} ({published.data}). Gap: plain − scheme, in points, same model and "
             "adaptation.\n", "| scheme | model | leia top-1 (%) | leia gap | paper top-1 (%) | paper gap |",
             "|---|---|---|---|---|---|"]
    for (data, scheme), cells in sorted(training.items()):
        if data != published.data:
            continue
        for col, cell in sorted(cells.items()):
            model = col.split(" [", 1)[0]  # the setting, if any, is the same for plain's cell in this column
            adapter = model.split("+", 1)[1] if "+" in model else "none"
            plain = training.get((data, "plain"), {}).get(col)
            gap = plain.mean - cell.mean if plain and plain.values and cell.values else None
            theirs = published.acc1.get((scheme, adapter))
            their_plain = published.acc1.get(("plain", adapter))
            their_gap = their_plain - theirs if theirs is not None and their_plain is not None else None
            lines.append(f"| {scheme} | {col} | {cell.text(2, 100.0)} | "
                         + ("—" if gap is None else f"{100 * gap:.2f}") + " | "
                         + ("—" if theirs is None else f"{theirs:.2f}") + " | "
                         + ("—" if their_gap is None else f"{their_gap:.2f}") + " |")
    return "\n".join(lines)


# Per attack: the numbers beyond SSIM that say what it recovered, (metric, label, scale).
DETAIL_MORE = [("ssim_up_to_global", "SSIM up to global", 1), ("direct_comparison", "direct comparison %", 100),
               ("neighbour_comparison", "neighbour comparison %", 100), ("fold_identity", "fold identity %", 100),
               ("ssim_fold", "SSIM fold", 1), ("holdout_ssim_up_to_global", "held-out SSIM up to global", 1),
               ("holdout_exact_bytes", "held-out exact bytes %", 100)]


def _mean(runs: list[dict], get) -> float | None:
    values = [v for v in map(get, runs) if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.fmean(values) if values else None


def _num(v: float | None, digits: int, scale: float = 1) -> str:
    return "–" if v is None else f"{scale * v:,.{digits}f}"


def attack_details(runs: list[dict]) -> str:
    """The attack table in full: one row per data set, attack, scheme and setting, each number the
    mean over the row's complete runs (n): SSIM (colour and BT.601 gray), PSNR, exact bytes, the key
    recovered, the encrypted image's own SSIM (what every attack must beat) and what else the attack
    reports. The table of bench/reproduce_attacks.py."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        if run["task"] == "attack" and run["status"] == "complete":
            key = (run["data"], run["attack"], run["scheme_config"], run.get("setting", ""))
            groups.setdefault(key, []).append(run)
    several_data = len({k[0] for k in groups}) > 1
    lines = ["| scheme | attack | setting | threat | n | SSIM | SSIM gray | PSNR dB | exact bytes % | key % | enc. SSIM "
             "| more |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for (data, attack, scheme, setting), rs in sorted(groups.items()):
        m = lambda k: _mean(rs, lambda r: r["metrics"].get(k))  # noqa: E731
        key = _mean(rs, lambda r: r.get("key", {}).get("key_recovered_fraction", r["metrics"].get("key_recovered_fraction")))
        more = [f"{label} {_num(v, 3 if scale == 1 else 1, scale)}" for k, label, scale in DETAIL_MORE
                if (v := m(k)) is not None]
        key_global = _mean(rs, lambda r: r.get("key", {}).get("key_recovered_fraction_up_to_global"))
        if key_global is not None:
            more.append(f"key up to global {100 * key_global:.1f}%")
        perm = _mean(rs, lambda r: r.get("key", {}).get("pixel_permutation_up_to_symmetry"))
        if perm is not None:
            more.append(f"pixel permutation up to symmetry {100 * perm:.1f}%")
        s = rs[0].get("summary") or {}
        if attack == "brute_force" and "key_space_log2" in s:  # a calculation, the same for every key
            more.append(f"log2 keys {s['key_space_log2']:,.0f}; {s['trials_per_second']:.0f} trials/s; "
                        f"10^{s['expected_log10_years']:,.0f} years (calculation); toy search {s['toy_keys']:,} keys "
                        f"in {s['toy_search_seconds']:.2f} s vs {s['toy_predicted_seconds']:.2f} s predicted")
        name = f"{scheme} ({data})" if several_data else scheme
        enc = _mean(rs, lambda r: (r.get("baseline_encrypted") or {}).get("ssim"))
        lines.append(f"| {name} | {attack} | {setting} | {rs[0].get('threat', '–')} | {len(rs)} | {_num(m('ssim'), 3)} | "
                     f"{_num(m('ssim_gray'), 3)} | {_num(m('psnr'), 2)} | {_num(m('exact_bytes'), 1, 100)} | "
                     f"{_num(key, 1, 100)} | {_num(enc, 3)} | {'; '.join(more)} |")
    return "\n".join(lines)


def write_cells_csv(path: Path, table: dict, column_title: str, metric: str) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["data", "scheme", column_title, f"{metric}_mean", f"{metric}_std", "n", "not_applicable", "failed"])
        for (data, scheme), cells in sorted(table.items()):
            for name, c in sorted(cells.items()):
                w.writerow([data, scheme, name, c.mean, c.std, c.n, c.statuses.count("not_applicable"),
                            c.statuses.count("failed")])


RUN_FIELDS = ["task", "status", "data", "scheme_config", "scheme", "attack", "setting", "model", "adapter", "client_tta",
              "key_seed", "seed", "key_fingerprint", "sweep", "name"]


def write_runs_csv(path: Path, runs: list[dict]) -> None:
    metric_names = sorted({k for r in runs for k in (r.get("metrics") or r.get("test") or {})})
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_FIELDS + metric_names + ["error", "dir"])
        for r in runs:
            section = (r.get("metrics") or r.get("test") or {}) if r["status"] == "complete" else {}
            w.writerow([r.get(k) for k in RUN_FIELDS] + [section.get(m) for m in metric_names]
                       + [r.get("error") or r.get("reason"), r["dir"]])


def privacy_utility(attacks: dict, training: dict) -> list[dict]:
    """Per (data set, scheme) with both kinds of result ON THAT DATA SET: the best model's accuracy and
    the strongest attack's SSIM (the scheme's verdict comes from the strongest attack in the grid)."""
    rows = []
    for (data, scheme), acells in sorted(attacks.items()):
        done = {a: c for a, c in acells.items() if c.values}
        model_cells = [(m, c, data) for m, c in training.get((data, scheme), {}).items() if c.values]
        if not done or not model_cells:
            continue
        attack, ac = max(done.items(), key=lambda kv: kv[1].mean)
        model, mc, tdata = max(model_cells, key=lambda t: t[1].mean)
        rows.append({"scheme": scheme, "attack_data": data, "best_attack": attack, "attack_ssim": ac.mean,
                     "attack_ssim_std": ac.std, "train_data": tdata, "best_model": model, "acc1": mc.mean,
                     "acc1_std": mc.std})
    return rows


def plot_privacy_utility(rows: list[dict], training: dict, path: Path, setting: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = sorted({r["attack_data"] for r in rows})

    fig, ax = plt.subplots(figsize=(6.5, 5))
    for r in rows:
        ax.errorbar(r["attack_ssim"], 100 * r["acc1"], xerr=r["attack_ssim_std"], yerr=100 * r["acc1_std"], fmt="o",
                    capsize=3)
        right = r["attack_ssim"] > 0.8  # keep labels of the broken schemes inside the axes
        label = f"{r['scheme']}\n({r['best_attack']})" + (f" [{r['attack_data']}]" if len(data) > 1 else "")
        ax.annotate(label, (r["attack_ssim"], 100 * r["acc1"]), textcoords="offset points", xytext=(-6 if right else 6, 4), ha="right" if right else "left",
                    fontsize=8)
    plain = [c.mean for (d, s), cells in training.items() if s == "plain" and d in data for c in cells.values() if c.values]
    if plain:
        ax.axhline(100 * max(plain), ls="--", color="gray", lw=1)
        ax.text(0.01, 100 * max(plain), " plain images", va="bottom", fontsize=8, color="gray")
    ax.set_xlabel("strongest attack's SSIM to the plain image (lower: more private)")
    ax.set_ylabel("test top-1 accuracy on encrypted images (%)")
    ax.set_xlim(0, 1.05)
    import textwrap

    note = "\n" + textwrap.fill(setting, 80) if setting else ""
    ax.set_title(f"Privacy-utility, per scheme ({', '.join(data)}){note}", fontsize=9 if setting else 12)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_scheme_grids(attacks: dict, out: Path) -> dict[str, Path]:
    """grids/<scheme>-<data>.png: each attack's grid.png on the scheme, pixel for pixel (no resampling),
    one under the other, each under a caption line."""
    from PIL import Image, ImageDraw

    written = {}
    for (data, scheme), cells in sorted(attacks.items()):
        shown = [(a, Image.open(c.grid).convert("RGB")) for a, c in sorted(cells.items()) if c.grid is not None]
        if not shown:
            continue
        caption = 14
        sheet = Image.new("RGB", (max(im.width for _, im in shown), sum(im.height + caption for _, im in shown)), "white")
        draw, y = ImageDraw.Draw(sheet), 0
        for attack, im in shown:
            draw.text((2, y + 1), f"{attack} on {scheme} ({data}); rows: plain, encrypted, reconstruction", fill="black")
            sheet.paste(im, (0, y + caption))
            y += im.height + caption
        path = out / "grids" / f"{scheme}-{data}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        sheet.save(path, optimize=True)
        written[f"{scheme} ({data})"] = path
    return written


def build(dirs: list[Path], out: Path, attack_metric: str = ATTACK_METRIC, train_metric: str = TRAIN_METRIC,
          setting: str | None = None, paper: str | None = None) -> dict:
    """Write the report; returns what it wrote (paths) and the tables."""
    runs = load_runs(dirs)
    label_settings(runs)
    out.mkdir(parents=True, exist_ok=True)
    attacks = grids(runs, "attack", attack_metric)
    training = grids(runs, "train", train_metric)
    written = {"runs_csv": out / "runs.csv"}
    write_runs_csv(written["runs_csv"], runs)
    md = [f"# Sweep report\n\nFrom {', '.join(f'`{d}`' for d in dirs)}: {len(runs)} jobs "
          f"({', '.join(f'{n} {s}' for s in STATUSES if (n := sum(r['status'] == s for r in runs)))}). "
          "Each cell: mean ± std over the keys and seeds that ran (n); n/a: the attack does not apply to the scheme; "
          "failed: every run of the cell failed (errors below); interrupted: stopped by a signal, the same "
          "command resumes it.\n"]
    if setting:  # e.g. the training budget, which the numbers depend on
        md += [f"Setting: {setting}\n"]
    if attacks:
        written["attacks_csv"] = out / "attacks.csv"
        write_cells_csv(written["attacks_csv"], attacks, "attack", attack_metric)
        md += [f"## Attacks: {attack_metric} of the reconstruction to the plain image\n",
               f"Up to the global symmetry where the attack reports `{attack_metric}_up_to_global` (a mirrored "
               "or colour-swapped reconstruction reveals as much as the image).\n",
               markdown_table(attacks, "scheme \\ attack", 3), "",
               "### Attacks in detail\n", "Each number: the mean over the row's complete runs (n). Setting: the "
               "parameters in which runs of one scheme and attack differ. enc. SSIM: the encrypted image's own "
               "SSIM, the row every attack must beat.\n", attack_details(runs), ""]
    if training:
        written["training_csv"] = out / "training.csv"
        write_cells_csv(written["training_csv"], training, "model", train_metric)
        percent = train_metric.startswith("acc")
        md += [f"## Training: test {train_metric}{' (%)' if percent else ''} on encrypted images\n",
               markdown_table(training, "scheme \\ model", 2 if percent else 4, 100.0 if percent else 1.0), ""]
        if paper:
            if train_metric != "acc1":
                raise InputError(f"--paper compares top-1 accuracy; it cannot be used with --train-metric {train_metric}")
            md += ["## Beside the paper\n", beside_paper(training, published.paper(paper)), ""]
    pu = privacy_utility(attacks, training)
    if pu:
        written["privacy_utility"] = out / "privacy_utility.png"
        plot_privacy_utility(pu, training, written["privacy_utility"], setting)
        md += ["## Privacy-utility\n", "Per scheme and data set: the best model, and the verdict of the strongest attack "
               "in the grid.\n", "| scheme | data | best model | accuracy | strongest attack | attack SSIM |",
               "|---|---|---|---|---|---|"]
        md += [f"| {r['scheme']} | {r['attack_data']} | {r['best_model']} | {100 * r['acc1']:.2f}% | {r['best_attack']} | "
               f"{r['attack_ssim']:.3f} |" for r in pu]
        md += ["", "![privacy-utility](privacy_utility.png)", ""]
    elif attacks and training:
        md += ["## Privacy-utility\n", "No scheme has attack and training results on the same data set, and the "
               "report never joins two data sets.\n"]
    scheme_grids = plot_scheme_grids(attacks, out)
    if scheme_grids:
        md += ["## Reconstructions per scheme\n"] + [f"### {s}\n\n![{s}]({p.relative_to(out)})\n" for s, p in scheme_grids.items()]
    errors = [e for table in (attacks, training) for cells in table.values() for c in cells.values() for e in c.errors]
    if errors:
        md += ["## Failed jobs\n"] + [f"- {e}" for e in errors] + [""]
    written["markdown"] = out / "report.md"
    written["markdown"].write_text("\n".join(md) + "\n")
    return {"written": written, "attacks": attacks, "training": training, "privacy_utility": pu,
            "grids": scheme_grids, "runs": runs}


def log_wandb(result: dict, project: str, group: str | None) -> None:
    """The report's tables and figures as one W&B run (job type `report`), offline unless credentials are set."""
    import wandb

    from .runs import wandb_mode

    mode = wandb_mode()
    run = wandb.init(project=project, group=group, job_type="report", name=f"report-{group or 'sweeps'}",
                     mode="offline" if mode in ("offline", "dryrun") else mode, dir=str(result["written"]["markdown"].parent))
    for key in ("attacks_csv", "training_csv", "runs_csv"):
        if key in result["written"]:
            with open(result["written"][key]) as f:
                rows = list(csv.reader(f))
            run.log({key.removesuffix("_csv"): wandb.Table(columns=rows[0], data=rows[1:])})
    images = {"privacy_utility": result["written"].get("privacy_utility"), **result["grids"]}
    run.log({f"figures/{k}": wandb.Image(str(p)) for k, p in images.items() if p})
    run.finish()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m leia.report", description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", type=Path, help="sweep directories (runs/sweeps/<sweep>) or any folder of runs")
    p.add_argument("--out", type=Path, help="where to write the report (default: <first dir>/report)")
    p.add_argument("--attack-metric", default=ATTACK_METRIC, help="attack metric of the tables (ssim, psnr, ...)")
    p.add_argument("--train-metric", default=TRAIN_METRIC, help="training metric of the tables (acc1, acc5)")
    p.add_argument("--setting", help="a line saying what the numbers are (e.g. the training budget), shown in the "
                   "report and on the plot")
    p.add_argument("--paper", help="add a published table beside the training results, with the gap to plain "
                   f"(one of: {', '.join(published.PAPERS)})")
    p.add_argument("--wandb", action="store_true", help="also log the tables and figures to W&B (job type report)")
    p.add_argument("--project", default="leia", help="W&B project (with --wandb)")
    args = p.parse_args(argv)
    try:
        if args.paper:
            published.paper(args.paper)  # an unknown name fails before anything is written
        result = build(args.dirs, args.out or args.dirs[0] / "report", args.attack_metric, args.train_metric, args.setting,
                       args.paper)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.wandb:
        sweeps = sorted({r["sweep"] for r in result["runs"] if r.get("sweep")})
        log_wandb(result, args.project, sweeps[0] if len(sweeps) == 1 else None)
    print(result["written"]["markdown"].read_text())
    for name, path in result["written"].items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
