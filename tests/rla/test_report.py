from rla.report import budget, comparison_table, format_ci, markdown_table, per_chunk_table


def _ci(mean):
    return {"mean": mean, "low": mean - 0.01, "high": mean + 0.01}


RESULTS = {
    "protocol": {"num_chunks": 2},
    "methods": {
        "rla@10 mean8": {"ci": {"token_l1_moving": _ci(0.1), "psnr_fg": _ci(20.0)}, "training_seeds": [0, 1, 2],
                         "cost": {"gflops": 0.1234, "ms_median": 5.01}, "per_chunk": {"token_l1_moving": [0.05, 0.1]}},
        "regression": {"ci": {"token_l1_moving": _ci(0.2), "psnr_fg": None}, "training_seeds": [0], "per_chunk": {}},
        "old_row": {"ci": None, "per_chunk": {}},  # no interval: left out
    },
    "comparisons": {"rla@10 mean8 − regression": {"token_l1_moving": {**_ci(-0.1), "verdict": "rla@10 mean8 beats regression"},
                                                   "ssim": {**_ci(0.0), "verdict": "undetermined"}}},
}


def test_markdown_table_shows_rows_and_columns_that_have_intervals():
    manifest = {"models": {"autoencoder": {"steps": 1000, "cpu_seconds": 60}, "dynamics": {"steps": 2000, "cpu_seconds": 120}}}
    lines = markdown_table(RESULTS, manifest, reported="rla@10 mean8").splitlines()
    assert lines[0] == "| method | token L1 moving ↓ | PSNR fg ↑ | GFLOPs / ms per chunk | training budget |"
    assert lines[2] == ("| **rla@10 mean8** (reported) (3 seeds) | 0.1000 [0.0900, 0.1100] | 20.00 [19.99, 20.01] | 0.123 / 5.0 "
                        "| 1,000 + 2,000 steps, 3 CPU-min |")
    assert lines[3] == "| regression (1 seed) | 0.2000 [0.1900, 0.2100] | n/a | — | — |"
    assert len(lines) == 4


def test_comparisons_per_chunk_budget_and_intervals():
    assert comparison_table(RESULTS).splitlines()[2:] == ["| rla@10 mean8 − regression | token_l1_moving | -0.1000 [-0.1100, -0.0900] "
                                                          "| rla@10 mean8 beats regression |"]
    assert per_chunk_table(RESULTS).splitlines()[2] == "| rla@10 mean8 | 0.0500 | 0.1000 |"
    assert budget("token_flow zero", {"models": {}}) == "—"
    assert format_ci({"mean": 1.0, "low": 0.5, "high": 1.5}, 1, sign=True) == "+1.0 [+0.5, +1.5]"
    assert format_ci(None) == "n/a"


def test_budget_over_seeds_is_the_median_with_its_range():
    def manifest(ae_cpu):
        return {"models": {"autoencoder": {"steps": 2000, "cpu_seconds": ae_cpu}, "dynamics": {"steps": 1200, "cpu_seconds": 600}}}

    seeds = [manifest(2160), manifest(1440), manifest(1500)]  # one run timed under load
    assert budget("rla@10 mean8", seeds) == "2,000 + 1,200 steps, 35 CPU-min (median of 3 seeds, 34–46)"
    assert budget("rla@10 mean8", seeds[:1]) == budget("rla@10 mean8", seeds[0]) == "2,000 + 1,200 steps, 46 CPU-min"
    assert budget("regression", seeds) == "—"
