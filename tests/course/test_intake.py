"""The intake reads any upload as text, bounded, and always answers for every exercise file."""

import os
import zipfile

from course import intake


def test_links_corrupt_members_deep_trees_and_huge_files_are_each_a_file_problem(tmp_path):
    (tmp_path / "losses.py").write_text("def mse(x_hat, x):\n    return 1\n")
    os.symlink("/etc/passwd", tmp_path / "layers.py")
    with open(tmp_path / "gradcheck.py", "wb") as f:
        f.truncate(1 << 30)
    with zipfile.ZipFile(tmp_path / "w.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("nn/optim.py", open(__file__).read())  # long enough that the damage stays in its data
    data = bytearray(open((tmp_path / "w.zip"), "rb").read())
    at = 30 + len("nn/optim.py") + 4  # inside the member's deflate stream, past its local header
    data[at:at + 30] = b"\xff" * 30
    (tmp_path / "w.zip").write_bytes(data)
    deep = tmp_path
    for _ in range(1100):
        deep = deep / "d"
        deep.mkdir()
    (deep / "vae.py").write_text("x = 1\n")
    try:
        taken = intake.take_submission(str(tmp_path))
    finally:
        remove_tree(str(tmp_path / "d"))  # a loop: pytest's own clean-up recurses
    assert taken["nn/losses.py"].text.startswith("def mse")
    assert taken["nn/layers.py"].text is None and "no nn/layers.py" in taken["nn/layers.py"].problem
    assert taken["nn/gradcheck.py"].text is None and "larger than 1024 KiB" in taken["nn/gradcheck.py"].problem
    assert taken["nn/optim.py"].text is None and "cannot be read" in taken["nn/optim.py"].problem
    assert taken["models/vae.py"].text is None  # deeper than MAX_DEPTH: not looked for


def remove_tree(folder):
    from course.judge import remove_tree as in_a_loop

    in_a_loop(folder)


def test_a_file_that_does_not_parse_is_said_with_its_line(tmp_path):
    from course.exercises import find

    result = intake.their_function(intake.Submitted("nn/losses.py", "def mse(:\n"), find("mse"))[1]
    assert result.status == "does not parse" and "(line 1" in result.message


def test_a_zip_whose_end_record_claims_a_huge_directory_is_never_given_to_zipfile(tmp_path, monkeypatch):
    with zipfile.ZipFile(tmp_path / "good.zip", "w") as z:
        z.writestr("ws/nn/losses.py", "def mse(x_hat, x):\n    return 1\n")
    with open(tmp_path / "bomb.zip", "wb") as f:  # sparse: a directory of 3.9 GB claimed, zeros in its place
        f.truncate(3_900_000_100)
        f.seek(3_900_000_100)
        f.write(intake.END.pack(b"PK\x05\x06", 0, 0, 1, 1, 3_900_000_000, 0, 0))
    data = (tmp_path / "good.zip").read_bytes()
    end = data.rfind(b"PK\x05\x06")
    lying = data[:end + 12] + (1 << 30).to_bytes(4, "little") + data[end + 16:]  # the same zip, its directory 1 GiB
    (tmp_path / "lying.zip").write_bytes(lying)
    opened = []
    real = zipfile.ZipFile
    monkeypatch.setattr(intake.zipfile, "ZipFile", lambda path, *a, **k: opened.append(path) or real(path, *a, **k))
    assert intake.directory_fits(tmp_path / "good.zip") and not intake.directory_fits(tmp_path / "bomb.zip")
    assert not intake.directory_fits(tmp_path / "lying.zip")
    taken = intake.take_submission(str(tmp_path))
    assert taken["nn/losses.py"].text.startswith("def mse") and {os.path.basename(p) for p in opened} == {"good.zip"}
