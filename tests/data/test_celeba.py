"""CelebA's official list files: round trips, the official whitespace layout, and error messages."""
import numpy as np
import pytest

from diffops.data.celeba import (ATTRIBUTE_NAMES, SPLITS, check_celeba_root, read_attributes, read_partitions,
                                 write_attributes, write_partitions)


def test_attribute_names_are_the_official_40():
    assert len(ATTRIBUTE_NAMES) == 40 and len(set(ATTRIBUTE_NAMES)) == 40
    assert ATTRIBUTE_NAMES[0] == "5_o_Clock_Shadow" and ATTRIBUTE_NAMES[20] == "Male"
    assert ATTRIBUTE_NAMES[-1] == "Young"
    assert SPLITS == {"train": 0, "val": 1, "test": 2}


def test_attributes_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, 6)]
    attrs = rng.choice(np.array([-1, 1], np.int8), size=(5, 40))
    write_attributes(tmp_path / "a.txt", names, attrs)
    got_names, got = read_attributes(tmp_path / "a.txt")
    assert got_names == names and got.dtype == np.int8 and np.array_equal(got, attrs)


def test_reads_the_official_padded_layout(tmp_path):
    # The official file right-aligns values: "000001.jpg -1  1  1 -1 ..." (two spaces before a 1).
    row = [-1, 1, 1] + [-1] * 36 + [1]
    line = "000001.jpg " + "".join(f"{v:3d}" for v in row).lstrip()
    (tmp_path / "a.txt").write_text("1\n" + " ".join(ATTRIBUTE_NAMES) + " \n" + line + "\n")
    names, attrs = read_attributes(tmp_path / "a.txt")
    assert names == ["000001.jpg"] and attrs[0].tolist() == row


@pytest.mark.parametrize("lines, where", [
    (["2", " ".join(ATTRIBUTE_NAMES), "000001.jpg " + " 1" * 40], "line 1"),              # count
    (["1", " ".join(ATTRIBUTE_NAMES[::-1]), "000001.jpg " + " 1" * 40], "line 2"),        # header
    (["1", " ".join(ATTRIBUTE_NAMES), "000001.jpg " + " 1" * 39], "line 3"),              # 39 values
    (["1", " ".join(ATTRIBUTE_NAMES), "000001.jpg " + " 1" * 39 + " 0"], "line 3"),       # not +-1
    (["many", " ".join(ATTRIBUTE_NAMES)], "line 1"),
    (["2", " ".join(ATTRIBUTE_NAMES), "000001.jpg " + " 1" * 40, "000001.jpg " + " -1" * 40], "line 4"),  # twice
])
def test_bad_attribute_files_name_file_and_line(tmp_path, lines, where):
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=f"list_attr_celeba.txt: {where}"):
        read_attributes(path)


def test_partitions_round_trip_and_errors(tmp_path):
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    write_partitions(tmp_path / "p.txt", names, [0, 1, 2])
    assert (tmp_path / "p.txt").read_text().splitlines()[0] == "000001.jpg 0"
    assert read_partitions(tmp_path / "p.txt") == {"000001.jpg": 0, "000002.jpg": 1, "000003.jpg": 2}
    (tmp_path / "bad.txt").write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(ValueError, match="bad.txt: line 2"):
        read_partitions(tmp_path / "bad.txt")
    (tmp_path / "twice.txt").write_text("000001.jpg 0\n000002.jpg 1\n000001.jpg 2\n")
    with pytest.raises(ValueError, match="twice.txt: line 3: 000001.jpg is listed twice"):
        read_partitions(tmp_path / "twice.txt")


def test_check_root_says_what_is_missing_and_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        check_celeba_root(tmp_path)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message
    for piece in ("img_align_celeba/", "list_attr_celeba.txt", "list_eval_partition.txt", "diffops generate"):
        assert piece in message
    (tmp_path / "img_align_celeba").mkdir()
    (tmp_path / "list_attr_celeba.txt").write_text("0\n")
    with pytest.raises(FileNotFoundError, match="list_eval_partition.txt missing") as err:
        check_celeba_root(tmp_path)
    assert "img_align_celeba/," not in str(err.value)
    (tmp_path / "list_eval_partition.txt").write_text("")
    check_celeba_root(tmp_path)
