"""An evaluation's files: results.json (everything), report.md (the tables people read) and two plots.

`write(results, directory)` is called after every benchmark, so the files always describe what has finished.
Choices: report.md shows pass@1 with its standard error (over questions), cons@k, pass@k, the share of
responses cut at max_tokens and response lengths, then per benchmark the questions the model found hardest
(lowest pass@1, at most `TABLE_ROWS`; the full table is in results.json). Plots: pass@k against k per
benchmark (log-2 axis), and response lengths per benchmark (histogram).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

TABLE_ROWS = 20
CODEFORCES_NOTE = (
    "The rating is the maximum-likelihood Elo rating given which rated problems the model solved "
    "(P(solve) = 1 / (1 + 10^((r_p - R) / 400)), every sample an independent attempt). Contest-based ratings "
    "(DeepSeek-R1, CodeElo) instead place submissions in real contest standings with time penalties; compare "
    "this number between checkpoints, not with human ratings."
)


def _percent(score: dict | None) -> str:
    if not score or score.get("value") is None or math.isnan(score["value"]):
        return "n/a"
    return f"{100 * score['value']:.1f} ± {100 * score['stderr']:.1f}"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown(results: dict) -> str:
    lines = [f"# Evaluation: {results['model']} (weight version {results['weight_version']})", "",
             f"Target: {results['target']}; backend: {results['backend']}. pass@1 is the mean correctness of k "
             "samples per question; ± is one standard error over questions.", "",
             "| benchmark | questions | k | T / top-p | pass@1 % | cons@k % | pass@k (k: %) | cut at max_tokens "
             "| mean tokens |", "|---|---|---|---|---|---|---|---|---|"]
    for name, section in results["benchmarks"].items():
        settings = section["settings"]
        curve = ", ".join(f"{k}: {100 * v:.1f}" for k, v in section["pass@k"].items())
        lines.append(f"| {name} | {section['questions']} | {settings['k']} | {settings['temperature']} / "
                     f"{settings['top_p']} | {_percent(section['pass@1'])} | {_percent(section['cons@k'])} | "
                     f"{curve} | {100 * section['truncated_share']:.1f}% | "
                     f"{section['lengths']['all']['mean']:.1f} |")
    for name, section in results["benchmarks"].items():
        lines += ["", f"## {name}", "",
                  "Verdicts: " + ", ".join(f"{v} {n}" for v, n in section["verdicts"].items()) + ".",
                  "Lengths (tokens): " + "; ".join(
                      f"{group} mean {stats['mean']:.1f}, median {stats['median']:.1f}, max {stats['max']:.0f}"
                      for group, stats in section["lengths"].items() if not math.isnan(stats["mean"])) + "."]
        if "codeforces" in section:
            rating = section["codeforces"]
            if rating.get("rating") is None:
                lines += ["", f"Codeforces rating: not estimated: {rating['reason']}."]
            else:
                where = {"low": " (solved nothing: the lower end of the range)",
                         "high": " (solved everything: the upper end of the range)"}.get(rating["boundary"], "")
                lines += ["", f"Codeforces rating: {rating['rating']:.0f} ± {rating['stderr']:.0f}{where} over "
                              f"{rating['problems']} rated problems, percentile {rating['percentile']:.1f}.",
                          "", CODEFORCES_NOTE]
        rows = sorted(section["per_question"], key=lambda row: (row["pass@1"], row["id"]))[:TABLE_ROWS]
        if rows:
            columns = list(rows[0])
            lines += ["", f"Hardest {len(rows)} of {section['questions']} questions:", "",
                      "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot(results: dict, directory: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, section in results["benchmarks"].items():
        ks = [int(k) for k in section["pass@k"]]
        axes.plot(ks, [100 * section["pass@k"][str(k)] for k in ks], marker="o", label=name)
    axes.set_xscale("log", base=2)
    axes.set(xlabel="k", ylabel="pass@k (%)", title=f"pass@k: {results['model']}")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(directory / "pass_at_k.png", dpi=100)
    plt.close(figure)
    written.append(directory / "pass_at_k.png")

    benchmarks = results["benchmarks"]
    figure, axes = plt.subplots(len(benchmarks), 1, figsize=(6, 2.2 * len(benchmarks)), squeeze=False)
    for ax, (name, section) in zip(axes[:, 0], benchmarks.items()):
        lengths = [row["mean_tokens"] for row in section["per_question"]]
        ax.hist(lengths, bins=min(30, max(1, len(lengths))), color="tab:blue", alpha=0.8)
        ax.set(title=f"{name}: mean response length per question", xlabel="tokens", ylabel="questions")
    figure.tight_layout()
    figure.savefig(directory / "lengths.png", dpi=100)
    plt.close(figure)
    written.append(directory / "lengths.png")
    return written


def write(results: dict, directory: str | Path) -> list[Path]:
    directory = Path(directory)
    (directory / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    (directory / "report.md").write_text(markdown(results))
    return [directory / "results.json", directory / "report.md", *plot(results, directory)]
