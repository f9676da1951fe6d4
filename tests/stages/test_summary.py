"""The summary stage: the headline numbers of the metrics files that exist, nothing invented."""
import json

import pytest
from click.exceptions import ClickException

from diffops.stages.summary import run


def test_summary_takes_what_exists_and_invents_nothing(tmp_path):
    (tmp_path / "edm.json").write_text(json.dumps({"fd_attrnet": 39.8, "fd_attrnet_untrained": 403.6,
                                                   "fd_attrnet_data": 1.66, "protocol": {"inception": "none"}}))
    (tmp_path / "tiw.json").write_text(json.dumps({"losses": {"dsm_obs": {"bias": 0.225},
                                                              "tiw_dsm": {"bias": 0.223, "bias_se": 0.011}}}))
    summary = run(tmp_path, tmp_path / "summary.json")
    assert summary == {"edm.fd_attrnet": 39.8, "edm.fd_untrained": 403.6, "edm.fd_data": 1.66,
                       "tiw.bias.dsm_obs": 0.225, "tiw.bias.tiw_dsm": 0.223, "tiw.bias_se.tiw_dsm": 0.011}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary     # no fid without Inception


def test_no_metrics_is_an_error_not_an_empty_file(tmp_path):
    with pytest.raises(ClickException, match="no metrics files"):
        run(tmp_path, tmp_path / "summary.json")
    assert not (tmp_path / "summary.json").exists()
