"""Bias metric pieces and the results table's shape."""
import numpy as np

from diffops.evaluation.bias import markdown_table, predicted_subgroups, total_variation


def test_predicted_subgroups_and_total_variation():
    probs = np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.6], [0.7, 0.9, 0.1], [0.1, 0.3, 0.9]])
    net_attributes = ["Male", "Smiling", "Black_Hair"]
    assert predicted_subgroups(probs, net_attributes, ["Male", "Black_Hair"]).tolist() == [1, 2, 1, 2]
    assert total_variation([0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0]) == 0
    assert total_variation([1, 0], [0, 1]) == 1
    assert np.isclose(total_variation([0.8, 0.1, 0.1], [0.4, 0.3, 0.3]), 0.4)


def test_markdown_table_has_a_row_per_loss_and_data_set():
    row = {"fd_attrnet": 1.5, "subgroup_tv": 0.25, "subgroup.g0": 0.5, "subgroup.g1": 0.5, "num_images": 10}
    table = {"subgroups": ["Male=0", "Male=1"], "losses": {"dsm_obs": row, "tiw_dsm": row},
             "data": {"test (unbiased)": {k: v for k, v in row.items() if k != "fd_attrnet"}}}
    lines = markdown_table(table).splitlines()
    assert lines[0].startswith("| | fd_attrnet | subgroup_tv | Male=0 | Male=1")
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["dsm_obs", "tiw_dsm", "test (unbiased)"]
    assert "| 1.500 | 0.250 | 50.0 | 50.0 | 10 |" in lines[2]
