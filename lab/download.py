"""Getting a dataset's files onto this machine: the folders searched, and the checked, atomic download.

Everything here works from a DatasetSource (lab/data.py), the record that says what a
dataset's files are called (`files`: IDX file name -> MD5 of its published .gz), where
they are published (`url`), where systems install them (`system_dirs`, `apt_package`).
Reading the files is lab/data.py's part; this module only finds them or fetches them.

Search order, for a dataset `name`:
  - if data_dir is given: data_dir, then data_dir/<name>/, and nowhere else
    (a folder the user names is where the user wants the data; a download goes there);
  - otherwise: the project's data/<name>/ (PROJECT_DATA_DIR), then the record's system_dirs
    (/usr/share/datasets/<name>/, e.g. from `apt-get install dataset-fashion-mnist`).
"""

import hashlib
import pathlib
import urllib.request

from .files import atomic_write

PROJECT_DATA_DIR = pathlib.Path(__file__).resolve().parent.parent / "data"
DOWNLOAD_TIMEOUT_S = 60  # per network operation, so a dead connection fails instead of hanging


class DataError(Exception):
    """A dataset could not be found, fetched or read. Its message is one line (or a short list) a user can act on."""


def locate_files(source, data_dir=None, download=True) -> list[pathlib.Path]:
    """Paths of source's IDX files, in the order of source.files, from the first folder that holds them all.

    Folders are searched in the order of this module's docstring; if none holds all the
    files and download is true, they are downloaded (into data_dir, or else data/<name>/).
    Failing that, one DataError says what to do.
    """
    folders, download_dir = search_folders(source, data_dir)
    for folder in folders:
        paths = find_files(folder, source.files)
        if paths is not None:
            return paths

    if not download:
        reason = "the automatic download is turned off"
    elif not source.url:
        reason = f"there is no download for {source.name}"
    else:
        try:
            download_files(source, download_dir)
        except DataError as e:
            reason = str(e)
        else:
            return find_files(download_dir, source.files)
    tried = reason if download and source.url else None  # why the download failed, if one was tried
    raise DataError(_not_found_message(source, data_dir, folders, download_dir, reason, tried))


def search_folders(source, data_dir=None) -> tuple[list[pathlib.Path], pathlib.Path]:
    """(the folders to search in order, the folder a download goes to) for `source`; see the module docstring."""
    if data_dir is not None:
        data_dir = pathlib.Path(data_dir).expanduser()
        return [data_dir, data_dir / source.name], data_dir
    download_dir = PROJECT_DATA_DIR / source.name
    return [download_dir, *source.system_dirs], download_dir


def find_files(folder, names) -> list[pathlib.Path] | None:
    """Paths of the files `names` in `folder` (each plain, or else with .gz), or None unless all are there."""
    paths = []
    for name in names:
        found = next((p for p in (folder / name, folder / f"{name}.gz") if p.is_file()), None)
        if found is None:
            return None
        paths.append(found)
    return paths


def download_files(source, dest_dir) -> pathlib.Path:
    """Fetch each published file source.url + <name>.gz into dest_dir, checking its MD5; returns dest_dir.

    Each file is written to a temporary file in dest_dir and renamed to its final name only
    once its checksum is right, so an interrupted or corrupted download never leaves a
    file under the final name. Files already there with the right checksum are kept.
    Folders this call created are removed again if it fails.
    """
    dest_dir = pathlib.Path(dest_dir).expanduser().absolute()
    created = [d for d in (dest_dir, *dest_dir.parents) if not d.exists()]  # deepest first
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create {dest_dir}: {e.strerror or e}") from None
    try:
        for name, md5 in source.files.items():
            _fetch_unless_present(source.url + f"{name}.gz", md5, dest_dir / f"{name}.gz")
    except BaseException:
        for d in created:  # a failed download leaves no empty folders behind
            try:
                d.rmdir()
            except OSError:
                break
        raise
    return dest_dir


def _fetch_unless_present(url, md5, final):
    """Download `url` to the path `final` unless a file with checksum `md5` is already there."""
    if final.is_file() and md5_of(final) == md5:
        return
    try:
        with atomic_write(final) as out:  # the final name appears only once the file is whole and checked
            got = fetch(url, out)
            if got != md5:
                raise DataError(f"{url}: checksum mismatch (MD5 {got}, expected {md5}); the file was discarded")
    except OSError as e:
        raise DataError(f"cannot write into {final.parent}: {e.strerror or e}") from None


def fetch(url, out) -> str:
    """Stream `url` into the binary file `out`; returns the MD5 hex digest of what was written."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
    except (OSError, ValueError) as e:  # URLError, HTTPError and timeouts are OSErrors
        reason = getattr(e, "reason", None) or e
        raise DataError(f"could not fetch {url}: {reason}") from None
    return md5.hexdigest()


def md5_of(path) -> str:
    """The MD5 hex digest of the file at `path`, read 1 MiB at a time."""
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _not_found_message(source, data_dir, folders, download_dir, reason, download_failure):
    """What to do when no folder has the files: one line if the named data_dir is not there, else a list."""
    name = source.name
    default_folders = [PROJECT_DATA_DIR / name, *source.system_dirs]
    apt = f" (sudo apt-get install {source.apt_package})" if source.apt_package else ""
    digits = "--dataset digits to start right away"
    if data_dir is not None and not folders[0].is_dir():
        problem = "not a folder" if folders[0].exists() else "no such folder"
        tried = f" (the download into it failed: {download_failure})" if download_failure else ""
        return (f"--data-dir {folders[0]}: {problem}{tried}; name the folder that holds the {name} files, "
                f"or leave --data-dir out to look in {' and '.join(f'{d}/' for d in default_folders)}{apt}, or {digits}")

    files = ", ".join(source.files)
    looked = ", ".join(str(d) for d in folders)
    ways = [f"--data-dir DIR, with DIR holding the files {files} (each may end in .gz)",
            f"put those files in {PROJECT_DATA_DIR / name}/"]
    if source.apt_package:
        ways.append(f"on Debian/Ubuntu: sudo apt-get install {source.apt_package}")
    ways.append(f"a network connection, for the automatic download into {download_dir}/ ({reason})")
    ways.append(f"{digits}: it comes with scikit-learn, nothing to fetch")
    bullets = "\n".join(f"  - {way}" for way in ways)
    return f"the {name} dataset was not found (looked in: {looked}). Any one of these will do:\n{bullets}"
