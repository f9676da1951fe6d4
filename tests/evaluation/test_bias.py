"""Bias metric pieces and the results table's shape."""
import numpy as np
import pytest

from diffops.evaluation.bias import (bootstrap_tv_se, markdown_table, predicted_subgroups, subgroup_confidence,
                                     total_variation)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_predicted_subgroups_and_total_variation():
    probs = np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.6], [0.7, 0.9, 0.1], [0.1, 0.3, 0.9]])
    net_attributes = ["Male", "Smiling", "Black_Hair"]
    assert predicted_subgroups(probs, net_attributes, ["Male", "Black_Hair"]).tolist() == [1, 2, 1, 2]
    assert total_variation([0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]) == 0
    assert total_variation([1, 0], [0, 1]) == 1
    assert np.isclose(total_variation([0.8, 0.1, 0.1], [0.4, 0.3, 0.3]), 0.4)
    assert np.isclose(subgroup_confidence(probs, net_attributes, ["Male", "Black_Hair"]),
                      np.mean([0.9 * 0.8, 0.8 * 0.6, 0.7 * 0.9, 0.9 * 0.9]))


def test_bootstrap_standard_error_of_the_bias_metric():
    rng = np.random.default_rng(1)
    reference = [0.4, 0.3, 0.2, 0.1]
    small, large = (rng.choice(4, n, p=[0.7, 0.1, 0.1, 0.1]) for n in (100, 10000))
    se_small, se_large = bootstrap_tv_se(small, 4, reference), bootstrap_tv_se(large, 4, reference)
    # The TV here is about 0.3 away from 0 (no folding at |.|): SE ~ the binomial sd of the dominant group.
    assert 0.6 * np.sqrt(0.21 / 100) < se_small < 1.6 * np.sqrt(0.21 / 100)
    assert se_large < se_small / 5 and se_small == bootstrap_tv_se(small, 4, reference)
    assert np.isnan(bootstrap_tv_se(np.array([0]), 4, reference))


def test_markdown_table_has_a_row_per_loss_and_data_set():
    row = {"fd_attrnet": 1.5, "rate.Male": 0.5, "rate_se.Male": 0.158, "bias": 0.1, "bias_se": 0.158,
           "subgroup_tv": 0.25, "subgroup.g0": 0.5, "subgroup.g1": 0.5, "num_images": 10}
    table = {"subgroups": ["Male=0", "Male=1"], "attributes": ["Male"], "losses": {"dsm_obs": row, "tiw_dsm": row},
             "data": {"test (unbiased)": {k: v for k, v in row.items() if k != "fd_attrnet"}}}
    lines = markdown_table(table).splitlines()
    assert lines[0].startswith("| | fd_attrnet | Male % | bias | subgroup_tv | Male=0 | Male=1 | confidence")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["dsm_obs", "tiw_dsm", "test (unbiased)"]
    assert "| 1.500 | 50.0 ± 15.8 | 0.100 ± 0.158 | 0.250 | 50.0 | 50.0 |  | 10 |" in lines[2]


def test_bias_is_the_rate_gap_with_its_binomial_se_and_needs_the_validity_gate():
    from diffops.evaluation.bias import validity_gate
    rows = {"dsm_obs": {"rate.Black_Hair": 0.10, "rate_se.Black_Hair": 0.01},
            "dsm_ref": {"rate.Black_Hair": 0.20, "rate_se.Black_Hair": 0.01}}
    data = {"D_obs": {"rate.Black_Hair": 0.11, "rate_se.Black_Hair": 0.01},
            "D_ref": {"rate.Black_Hair": 0.30, "rate_se.Black_Hair": 0.02}}
    gate = validity_gate(rows, data, ["Black_Hair"])
    assert gate == {("dsm_obs", "D_obs"): True, ("dsm_ref", "D_ref"): False}    # 0.10 off by 4.5 combined SE


def test_guidance_gate_is_the_fraction_of_the_way_to_the_unbiased_rate():
    from diffops.evaluation.bias import guidance_checks
    test = {"rate.Blond_Hair": 0.16}
    obs = {"rate.Blond_Hair": 0.40}
    assert guidance_checks(obs, {"rate.Blond_Hair": 0.22}, test, ["Blond_Hair"]) == {
        "guidance_fraction_of_the_way": 0.75, "guidance_moves_most_of_the_way": True}
    moved_away = guidance_checks(obs, {"rate.Blond_Hair": 0.45}, test, ["Blond_Hair"])
    assert moved_away["guidance_fraction_of_the_way"] < 0 and not moved_away["guidance_moves_most_of_the_way"]
    assert guidance_checks(test, test, test, ["Blond_Hair"])["guidance_moves_most_of_the_way"] is None


def test_results_table_scores_every_loss_and_logs(tmp_path, mlflow_uri):
    import json

    import mlflow
    from PIL import Image

    from diffops.stages.tiw_table import run as tiw_table

    from tests.helpers.tiw import tiw_config, write_featurenet, write_group_container
    data = write_group_container(tmp_path / "tiw" / "obs", n_ref=16, n_bias=32)
    featurenet = write_featurenet(tmp_path / "featurenet")
    rng = np.random.default_rng(0)
    runs = {}
    for loss in ("dsm_ref", "dsm_obs", "tiw_dsm", "dsm_obs_dg"):
        (tmp_path / "samples" / loss / "images").mkdir(parents=True)
        for seed in range(24):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp_path / "samples" / loss / "images" / f"{seed:06d}.png")
        if loss == "dsm_obs_dg":                 # guided dsm_obs: a row with no training run of its own
            runs[loss] = (tmp_path / "samples" / loss, None)
            continue
        (tmp_path / "models" / loss).mkdir(parents=True)
        (tmp_path / "models" / loss / "model.json").write_text(json.dumps({"mlflow_run_id": None}))
        runs[loss] = (tmp_path / "samples" / loss, tmp_path / "models" / loss)
    cfg = tiw_config()
    table = tiw_table(cfg, data, featurenet, runs, tmp_path / "metrics" / "tiw", tmp_path / "tiw.json")
    checks = table["checks"]
    assert set(table["losses"]) == set(runs) and {"dsm_obs_reproduces_D_obs", "dsm_ref_reproduces_D_ref"} <= set(checks)
    valid = checks["dsm_obs_reproduces_D_obs"] and checks["dsm_ref_reproduces_D_ref"]
    assert ("tiw_dsm_bias_gap_in_se" in checks) == valid == ("bias" in table["losses"]["tiw_dsm"])
    assert "rate.Male" in table["losses"]["tiw_dsm"] and "rate_se.Male" in table["data"]["D_obs"]
    assert all((tmp_path / "metrics" / "tiw" / f"{loss}.json").exists() for loss in runs)
    row = table["losses"]["tiw_dsm"]
    assert row["num_images"] == 24 and np.isclose(sum(row[f"subgroup.g{g}"] for g in range(4)), 1)
    assert json.loads((tmp_path / "tiw.json").read_text())["data"]["D_obs"]["num_images"] == 24
    assert {"guidance_fraction_of_the_way", "guidance_moves_most_of_the_way"} <= set(checks)
    assert (tmp_path / "tiw.md").read_text().count("\n") == 2 + 4 + 4       # header, 3 losses + DG, 4 data rows
    run = mlflow.search_runs(experiment_names=["test-tiw"], filter_string="tags.mlflow.runName = 'tiw-results'",
                             output_format="list")[0]
    assert run.info.status == "FINISHED" and "tiw_dsm.subgroup_tv" in run.data.metrics

    from diffops.stages.tiw_seeds import run as tiw_seeds        # two "seeds": the same table twice
    seeds = tiw_seeds(cfg, [tmp_path / "tiw.json", tmp_path / "tiw.json"], tmp_path / "seeds" / "tiw.json")
    assert seeds["n_seeds"] == 2 and seeds["losses"]["tiw_dsm"]["rate_se.Male"] == 0.0
    assert (tmp_path / "seeds" / "tiw.md").read_text().count("\n") == 2 + 4 + 3     # header, 3 losses + DG, 3 data rows


def test_seeds_table_takes_the_standard_error_over_seeds_and_keeps_the_gate():
    from diffops.evaluation.bias import seeds_markdown, seeds_table

    def table(obs_rate, tiw_rate):
        row = lambda r: {"rate.Blond_Hair": r, "rate_se.Blond_Hair": 0.005, "fd_attrnet": 30.0}   # noqa: E731
        return {"attributes": ["Blond_Hair"],
                "losses": {"dsm_ref": row(0.15), "dsm_obs": row(obs_rate), "tiw_dsm": row(tiw_rate)},
                "data": {"test (unbiased)": {"rate.Blond_Hair": 0.16}, "D_obs": row(0.05),
                         "D_ref": {"rate.Blond_Hair": 0.16, "rate_se.Blond_Hair": 0.027}}}
    out = seeds_table([table(0.04, 0.10), table(0.05, 0.09), table(0.06, 0.11)])
    obs, tiw = out["losses"]["dsm_obs"], out["losses"]["tiw_dsm"]
    assert obs["bias"] == pytest.approx(0.11) and obs["bias_se"] == pytest.approx(0.01 / np.sqrt(3))
    assert tiw["bias"] == pytest.approx(0.06) and obs["n_seeds"] == 3
    assert out["checks"]["dsm_obs_reproduces_D_obs"] and out["checks"]["dsm_ref_reproduces_D_ref"]
    assert out["checks"]["tiw_dsm_bias_gap_in_se"] == pytest.approx(0.05 / np.hypot(0.01, 0.01) * np.sqrt(3), abs=0.01)
    assert "| tiw_dsm | 30.00 ± 0.00 | 10.0 ± 0.6 | 0.060 ± 0.006 | 3 |" in seeds_markdown(out)
    failing = seeds_table([table(0.01, 0.10), table(0.01, 0.09)])          # dsm_obs far below D_obs's 5 %
    assert not failing["checks"]["dsm_obs_reproduces_D_obs"] and "bias" not in failing["losses"]["tiw_dsm"]
