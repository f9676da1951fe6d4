"""The asyrp params section: every bad value stops with one line naming its key."""
import pytest

from diffops.config import ConfigError, load_params


@pytest.mark.parametrize("asyrp, key, words", [
    ({"t_edit": 800, "t_0": 700}, "asyrp.t_edit", "<= asyrp.t_0"),
    ({"t_boost": 600}, "asyrp.t_boost", "<= asyrp.t_edit"),
    ({"direction": "clip"}, "asyrp.clip_model", "local open_clip"),
    ({"direction": "clip", "clip_model": "/x", "target_prompt": "face"}, "asyrp.target_prompt", "must differ"),
    ({"direction": "text"}, "asyrp.direction", "one of attribute, clip"),
    ({"attribute": "Smilling"}, "asyrp.attribute", "did you mean Smiling"),
    ({"edit_steps": 1}, "asyrp.edit_steps", "[2, 1000]"),
    ({"t_0": 1000}, "asyrp.t_0", "[1, 999]"),
    ({"optimizer": "adam"}, "asyrp.optimizer", "sgd, adamw"),
    ({"lambda_dir": 0, "lambda_rec": 0}, "asyrp.lambda_dir", "nothing to train"),
    ({"lr": 0}, "asyrp.lr", "positive"),
    ({"scal": 1.0}, "asyrp.scal", "did you mean scale"),
])
def test_bad_asyrp_params_name_their_key(asyrp, key, words):
    with pytest.raises(ConfigError) as e:
        load_params({"asyrp": asyrp})
    assert e.value.key == key and words in str(e.value) and "\n" not in str(e.value)


def test_negative_scale_is_the_opposite_edit():
    assert load_params({"asyrp": {"scale": -1.0}}).asyrp.scale == -1.0


def test_the_attribute_must_be_one_the_attribute_net_reads():
    from diffops.config.asyrp import check_attribute
    with pytest.raises(ConfigError, match="asyrp.attribute: must be one of featurenet.attributes"):
        check_attribute(load_params({"asyrp": {"attribute": "Bald"}}))
